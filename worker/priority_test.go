package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// Issue 12: a tenant with 10,000 bulk jobs queued at 5/s; a campaign.stop
// published behind them reaches the platform within one rate interval of
// being published (≤ 1 s), and bulk goes on meanwhile.
func TestUrgentJobOvertakesBulkBacklog(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.RatePerMinute, t.Concurrency = 300, 4 })
	e.provision(ta)
	reqs := watchRequests(e.sim)

	const bulk = 10_000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A connection of its own whose asynchronous publishes may all be
	// outstanding at once (nats.go stalls at 4,000 by default).
	pjs, err := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(bulk+1))
	if err != nil {
		t.Fatal(err)
	}
	var acks []jetstream.PubAckFuture
	for i := range bulk {
		body := fmt.Sprintf(`{"id":"add-%d","op":"contacts.add","params":{"contact_list_id":"l1","contacts":[{"data":{"phone":"+1555%07d"}}]}}`, i, i)
		f, err := pjs.PublishAsync(e.names.PriorityJobSubject("a", dispatcher.PriorityBulk, "contacts.add"), []byte(body), jetstream.WithMsgID(dispatcher.MsgID("a", fmt.Sprintf("add-%d", i))))
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, f)
	}
	select {
	case <-pjs.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("bulk jobs not all acknowledged")
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("bulk publish: %v", err)
		}
	}

	e.start(e.config("r1", nil, ta))
	isAdd := func(r platformtest.Request) bool { return strings.HasSuffix(r.Path, "/contacts") }
	reqs.waitFor(t, "bulk jobs under way", 20*time.Second, "a", func(rs []platformtest.Request) bool { return countOf(rs, isAdd) >= 10 })

	stop := dispatcher.Job{ID: "stop-1", Op: "campaign.stop", Params: json.RawMessage(`{"campaign_id":"c1"}`)}
	if p := stop.EffectivePriority(); p != dispatcher.PriorityUrgent {
		t.Fatalf("campaign.stop's class %s, want urgent", p)
	}
	published := time.Now()
	e.publish("a", stop)
	isStop := func(r platformtest.Request) bool { return strings.HasSuffix(r.Path, "/c1/stop") }
	rs := reqs.waitFor(t, "the stop to reach the platform", 10*time.Second, "a", func(rs []platformtest.Request) bool { return countOf(rs, isStop) == 1 })
	var at time.Time
	for _, r := range rs {
		if isStop(r) {
			at = r.At
		}
	}
	took := at.Sub(published)
	t.Logf("stop reached the platform %v after it was published, behind %d bulk jobs", took, bulk-countOf(rs, isAdd))
	if took > time.Second {
		t.Errorf("stop reached the platform %v after it was published, want ≤ 1 s", took)
	}
	if n := bulk - countOf(rs, isAdd); n < bulk-100 {
		t.Errorf("only %d bulk jobs left: the test did not put the stop behind a backlog", n)
	}
	// Bulk keeps going after the stop.
	before := countOf(rs, isAdd)
	reqs.waitFor(t, "bulk to go on", 5*time.Second, "a", func(rs []platformtest.Request) bool { return countOf(rs, isAdd) >= before+5 })
}

func countOf(rs []platformtest.Request, f func(platformtest.Request) bool) int {
	n := 0
	for _, r := range rs {
		if f(r) {
			n++
		}
	}
	return n
}

// With every class waiting, the gate shares the tenant's requests by
// weight: urgent 7, normal 2, bulk 1 of every ten; a class alone gets all.
func TestGateSharesByClassWeight(t *testing.T) {
	// Several requests of each class waiting at once, or one each that
	// leaves and comes back at once (it must not bank a turn while away).
	for _, waiters := range []int{3, 1} {
		t.Run(fmt.Sprintf("%d waiting per class", waiters), func(t *testing.T) { testGateShares(t, waiters) })
	}
}

func testGateShares(t *testing.T, waiters int) {
	g := newGate(time.Now, rate.Limit(2000), 1)
	const grants = 1000
	var (
		mu    sync.Mutex
		got   [classCount]int
		total int
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for c := range classCount {
		for range waiters {
			wg.Go(func() {
				cctx := withClass(ctx, c)
				for {
					if err := g.wait(cctx); err != nil {
						return
					}
					mu.Lock()
					if total < grants {
						got[c]++
						total++
					}
					done := total >= grants
					mu.Unlock()
					if done {
						cancel()
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for i, p := range dispatcher.Priorities() {
		share := float64(got[i]) / grants
		want := float64(dispatcher.PriorityWeight(p)) / 10
		t.Logf("%s: %d of %d (%.3f, want %.1f)", p, got[i], grants, share, want)
		if share < want-0.03 || share > want+0.03 {
			t.Errorf("%s got %.3f of the requests, want %.1f ± 0.03", p, share, want)
		}
	}

	// A class alone takes every token.
	g2 := newGate(time.Now, rate.Limit(2000), 1)
	bctx := withClass(context.Background(), dispatcher.PriorityBulk.Index())
	start := time.Now()
	for range 200 {
		if err := g2.wait(bctx); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("bulk alone took %v for 200 tokens at 2,000/s", took)
	}
}

// A normal request arriving while bulk ones keep waiting takes the next
// token: it waits at most one interval, however long bulk has waited alone.
func TestGateHigherClassTakesTheNextToken(t *testing.T) {
	const perSec = 5
	g := newGate(time.Now, rate.Limit(perSec), 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 4 {
		wg.Go(func() {
			c := withClass(ctx, dispatcher.PriorityBulk.Index())
			for g.wait(c) == nil {
			}
		})
	}
	interval := time.Second / perSec
	for i := range 6 {
		// Arrive at different points of an interval.
		timer := time.NewTimer(interval + time.Duration(i)*interval/6)
		<-timer.C
		start := time.Now()
		if err := g.wait(withClass(ctx, dispatcher.PriorityNormal.Index())); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > interval+interval/2 {
			t.Errorf("normal request %d waited %v behind bulk, want ≤ one interval (%v)", i, took, interval)
		}
	}
}

// With a burst of 2, bulk waiting alone leaves a token banked: a normal
// request arriving beside it goes at once, and bulk keeps the whole rate.
func TestGateBulkLeavesATokenForLiveWork(t *testing.T) {
	const perSec = 10
	g := newGate(time.Now, rate.Limit(perSec), 2)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var bulkTaken atomic.Int64
	for range 4 {
		wg.Go(func() {
			c := withClass(ctx, dispatcher.PriorityBulk.Index())
			for g.wait(c) == nil {
				bulkTaken.Add(1)
			}
		})
	}
	interval := time.Second / perSec
	start := time.Now()
	for i := range 8 {
		timer := time.NewTimer(interval + time.Duration(i)*interval/8)
		<-timer.C
		s := time.Now()
		if err := g.wait(withClass(ctx, dispatcher.PriorityNormal.Index())); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(s); took > interval/2 {
			t.Errorf("normal request %d waited %v beside bulk with a token banked, want at once", i, took)
		}
	}
	elapsed := time.Since(start).Seconds()
	// Bulk and normal together used the rate (the burst aside).
	if used := float64(bulkTaken.Load()+8) / elapsed; used < 0.8*perSec {
		t.Errorf("bulk and normal took %.1f tokens/s of %d", used, perSec)
	}
}
