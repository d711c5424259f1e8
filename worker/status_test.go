package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// The writer keeps a key's writes in order: a queued (coalesced) put never
// lands after a synchronous update of the same key, so a free delivery that
// was counted stays counted.
func TestStatusWriterOrdersWritesPerKey(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "status"})
	if err != nil {
		t.Fatal(err)
	}
	w := newStatusWriter(js, kv, "status", "a", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx, time.Second) }()
	defer stop()

	const jobs = 200
	for i := range jobs {
		id := fmt.Sprintf("j%d", i)
		w.put(dispatcher.JobStatus{ID: id, Tenant: "a", State: dispatcher.StateRunning, Attempts: 1})
		if i%2 == 0 {
			err := w.update(ctx, dispatcher.StatusKey("a", id), func(cur dispatcher.JobStatus, found bool) (dispatcher.JobStatus, bool) {
				cur.ID, cur.Tenant, cur.State = id, "a", dispatcher.StateRetrying
				cur.FreeDeliveries++
				return cur, true
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// Stopping the writer flushes what is queued.
	stop()
	<-done
	for i := range jobs {
		id := fmt.Sprintf("j%d", i)
		st, found, err := w.get(ctx, dispatcher.StatusKey("a", id))
		if err != nil || !found {
			t.Fatalf("%s: found %v, %v", id, found, err)
		}
		want := dispatcher.StateRunning
		if i%2 == 0 {
			want = dispatcher.StateRetrying
		}
		if st.State != want || (i%2 == 0 && st.FreeDeliveries != 1) {
			t.Errorf("%s: %+v, want %s", id, st, want)
		}
	}
}

// A synchronous write whose caller stopped waiting (its ctx ended: the caller
// went on to Nak the job) must not be applied later: by then the next
// delivery, perhaps on another replica, may have written a newer record,
// which the stale one would overwrite.
func TestStatusWriterDropsAbandonedSyncWrites(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "status"})
	if err != nil {
		t.Fatal(err)
	}
	w := newStatusWriter(js, kv, "status", "a", slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

	// The writer is busy (not running yet): the callers give up waiting.
	gone, giveUp := context.WithCancel(context.Background())
	giveUp()
	key := dispatcher.StatusKey("a", "j1")
	if err := w.update(gone, key, func(cur dispatcher.JobStatus, found bool) (dispatcher.JobStatus, bool) {
		return dispatcher.JobStatus{ID: "j1", Tenant: "a", State: dispatcher.StateRetrying, FreeDeliveries: cur.FreeDeliveries + 1}, true
	}); err == nil {
		t.Fatal("update with a cancelled ctx reported success")
	}
	if err := w.putSync(gone, dispatcher.JobStatus{ID: "j2", Tenant: "a", State: dispatcher.StateRetrying}); err == nil {
		t.Fatal("putSync with a cancelled ctx reported success")
	}

	// Meanwhile the next deliveries finished and recorded their outcome.
	for _, id := range []string{"j1", "j2"} {
		data := fmt.Appendf(nil, `{"id":%q,"tenant":"a","state":%q}`, id, dispatcher.StateSucceeded)
		if _, err := kv.Put(ctx, dispatcher.StatusKey("a", id), data); err != nil {
			t.Fatal(err)
		}
	}

	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx, time.Second) }()
	// A later write through the writer is applied; once it is, anything
	// queued before it has been handled.
	if err := w.putSync(ctx, dispatcher.JobStatus{ID: "j3", Tenant: "a", State: dispatcher.StateRetrying}); err != nil {
		t.Fatal(err)
	}
	stop()
	<-done
	for _, id := range []string{"j1", "j2"} {
		st, found, err := w.get(ctx, dispatcher.StatusKey("a", id))
		if err != nil || !found {
			t.Fatalf("%s: found %v, %v", id, found, err)
		}
		if st.State != dispatcher.StateSucceeded {
			t.Errorf("%s: %+v: an abandoned write overwrote the newer record", id, st)
		}
	}
}

// runWriter runs w until the test ends.
func runWriter(t *testing.T, w *statusWriter) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, time.Second) }()
	t.Cleanup(func() { stop(); <-done })
}

// A write for an earlier delivery than the record's is dropped: a late
// write never replaces a newer record of the same job.
func TestStatusWriterKeepsNewerRecord(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "status"})
	if err != nil {
		t.Fatal(err)
	}
	w := newStatusWriter(js, kv, "status", "a", slog.New(slog.DiscardHandler), nil)
	runWriter(t, w)
	key := dispatcher.StatusKey("a", "j1")
	rec := func(seq, delivery uint64, state string) dispatcher.JobStatus {
		return dispatcher.JobStatus{ID: "j1", Tenant: "a", State: state, Seq: seq, Delivery: delivery}
	}
	for _, step := range []struct {
		write dispatcher.JobStatus
		want  dispatcher.JobStatus // the record afterwards
	}{
		{rec(5, 3, dispatcher.StateRunning), rec(5, 3, dispatcher.StateRunning)},
		{rec(5, 2, dispatcher.StateRetrying), rec(5, 3, dispatcher.StateRunning)}, // late: dropped
		{rec(5, 3, dispatcher.StateRetrying), rec(5, 3, dispatcher.StateRetrying)},
		{rec(5, 4, dispatcher.StateRunning), rec(5, 4, dispatcher.StateRunning)},
		{rec(4, 9, dispatcher.StateRetrying), rec(5, 4, dispatcher.StateRunning)}, // an older message of the id: dropped
		{rec(6, 1, dispatcher.StateRunning), rec(6, 1, dispatcher.StateRunning)},  // the id published again
	} {
		if err := w.putSync(ctx, step.write); err != nil {
			t.Fatal(err)
		}
		got, _, err := w.get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != step.want.Seq || got.Delivery != step.want.Delivery || got.State != step.want.State {
			t.Errorf("after writing seq %d delivery %d %s: record seq %d delivery %d %s; want seq %d delivery %d %s",
				step.write.Seq, step.write.Delivery, step.write.State, got.Seq, got.Delivery, got.State, step.want.Seq, step.want.Delivery, step.want.State)
		}
	}
}

// A caller whose ctx ends while its write is being sent does not give up on
// it: it gets the write's outcome, so it never goes on believing a write
// failed that then lands (a hand-back recorded twice, or not at all).
func TestStatusWriterReportsWriteInFlight(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "status"})
	if err != nil {
		t.Fatal(err)
	}
	w := newStatusWriter(js, kv, "status", "a", slog.New(slog.DiscardHandler), nil)
	caller, giveUp := context.WithCancel(ctx)
	sending := make(chan struct{})
	w.testHookSync = func(context.Context) {
		close(sending)
		<-caller.Done() // the caller gives up while the write is on its way
	}
	runWriter(t, w)
	go func() { <-sending; giveUp() }()
	err = w.putSync(caller, dispatcher.JobStatus{ID: "j1", Tenant: "a", State: dispatcher.StateRetrying, Seq: 1, Delivery: 1})
	if err != nil {
		t.Fatalf("putSync while in flight: %v, want its outcome (stored)", err)
	}
	if _, found, err := w.get(ctx, dispatcher.StatusKey("a", "j1")); err != nil || !found {
		t.Fatalf("record after a reported success: found %v, %v", found, err)
	}
}

// Issue 9, part 3: every lane writes its records with its own writer, so a
// burst of one tenant's hand-backs does not delay another tenant's record.
func TestStatusWritesPerTenant(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a", "b")
	ta, tb := e.tenant("a", nil), e.tenant("b", nil)
	e.provision(ta, tb)
	p, err := New(e.config("r1", nil, ta, tb))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if p.status, err = e.js.KeyValue(ctx, e.names.StatusBucket()); err != nil {
		t.Fatal(err)
	}
	la, lb := p.lane("a"), p.lane("b")
	la.startStatus()
	lb.startStatus()
	t.Cleanup(func() { la.stopStatus(); <-la.statusDone; lb.stopStatus(); <-lb.statusDone })
	if la.status == lb.status {
		t.Fatal("tenants a and b share a status writer")
	}
	handBack := func(cur dispatcher.JobStatus, found bool) (dispatcher.JobStatus, bool) {
		cur.State = dispatcher.StateRetrying
		cur.FreeDeliveries++
		return cur, true
	}

	// Alone, b's hand-back record takes one read and one write.
	start := time.Now()
	if err := lb.status.update(ctx, dispatcher.StatusKey("b", "solo"), handBack); err != nil {
		t.Fatal(err)
	}
	solo := time.Since(start)

	// A's burst: 2,000 hand-backs at once, queued before b's next one. A's
	// writer holds its first write until half the burst is queued, so the
	// queue is there however fast the writer would drain it. (The hook is
	// set before any update: the writer reads it only after taking a queued
	// update under the writer's mutex.)
	const burst = 2000
	release := make(chan struct{})
	var gate sync.Once
	la.status.testHookSync = func(ctx context.Context) {
		gate.Do(func() {
			select {
			case <-release:
			case <-ctx.Done():
			}
		})
	}
	var wg sync.WaitGroup
	burstStart := time.Now()
	for i := range burst {
		wg.Go(func() {
			if err := la.status.update(ctx, dispatcher.StatusKey("a", fmt.Sprintf("j%d", i)), handBack); err != nil {
				t.Error(err)
			}
		})
	}
	eventually(t, "a's burst queued", 10*time.Second, func() bool {
		la.status.mu.Lock()
		defer la.status.mu.Unlock()
		return len(la.status.syncs) >= burst/2
	})
	close(release)
	start = time.Now()
	if err := lb.status.update(ctx, dispatcher.StatusKey("b", "during"), handBack); err != nil {
		t.Fatal(err)
	}
	during := time.Since(start)
	wg.Wait()
	took := time.Since(burstStart)
	t.Logf("b's hand-back record: %s alone, %s during a's burst of %d (which took %s)", solo.Round(time.Microsecond), during.Round(time.Microsecond), burst, took.Round(time.Millisecond))
	// Queued behind a's burst, b's record would wait for most of it.
	if during > took/10 {
		t.Errorf("b's record took %s during a's burst (%s): it waited for a's writes", during, took)
	}
}
