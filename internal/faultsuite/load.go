package faultsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// generator publishes campaign.start jobs for each tenant at a steady rate,
// as an upstream producer would: nats.go, subject
// orgdispatch.jobs.<tenant>.campaign.start, Nats-Msg-Id <tenant>:<id>. A
// publish that gets no acknowledgement (the server is down, a leader is
// being elected) is sent again with the same id until it is acknowledged,
// so the stream's duplicate window keeps it at one job; the tenant's next
// job waits meanwhile.
type generator struct {
	js    jetstream.JetStream
	names dispatcher.Names
	rate  float64 // jobs per second per tenant
	// backlog is the jobs each tenant publishes at once when the load
	// starts, before the steady rate: a queue for the lanes to work off.
	backlog int

	mu          sync.Mutex
	acked       map[string][]string  // tenant → ids acknowledged by JetStream
	ackedAt     map[string]time.Time // tenant/id → when the acknowledgement came
	unconfirmed map[string][]string  // tenant → ids never acknowledged (the run ended first)
}

// confirmTimeout bounds how long the generator goes on re-sending the job
// in hand once the load has ended.
const confirmTimeout = 30 * time.Second

func newGenerator(js jetstream.JetStream, names dispatcher.Names, rate float64, backlog int) *generator {
	return &generator{js: js, names: names, rate: rate, backlog: backlog, acked: map[string][]string{}, ackedAt: map[string]time.Time{}, unconfirmed: map[string][]string{}}
}

// run publishes for every tenant until ctx ends.
func (g *generator) run(ctx context.Context, tenantIDs []string) {
	var wg sync.WaitGroup
	for _, tn := range tenantIDs {
		wg.Go(func() { g.tenant(ctx, tn) })
	}
	wg.Wait()
}

func (g *generator) tenant(ctx context.Context, tenant string) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / g.rate))
	defer tick.Stop()
	for seq := 1; ; seq++ {
		if seq > g.backlog {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		id := fmt.Sprintf("%s-%06d", tenant, seq)
		if g.publish(ctx, tenant, id) {
			g.mu.Lock()
			g.acked[tenant] = append(g.acked[tenant], id)
			g.ackedAt[tenant+"/"+id] = time.Now()
			g.mu.Unlock()
		} else {
			g.mu.Lock()
			g.unconfirmed[tenant] = append(g.unconfirmed[tenant], id)
			g.mu.Unlock()
			return
		}
	}
}

// publish sends one job until JetStream acknowledges it; false when it
// could not be confirmed within confirmTimeout after ctx ended.
func (g *generator) publish(ctx context.Context, tenant, id string) bool {
	body, _ := json.Marshal(map[string]any{
		"id": id, "op": "campaign.start",
		"params": map[string]string{"campaign_id": id},
	})
	msg := &nats.Msg{Subject: g.names.JobSubject(tenant, "campaign.start"), Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, dispatcher.MsgID(tenant, id))
	var giveUp time.Time
	for {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_, err := g.js.PublishMsg(actx, msg)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			if giveUp.IsZero() {
				giveUp = time.Now().Add(confirmTimeout)
			}
			if time.Now().After(giveUp) {
				return false
			}
		}
		// A retry schedule, not a wait for a condition: the server answers
		// nothing while it is down, so re-send after a short pause.
		t := time.NewTimer(100 * time.Millisecond)
		<-t.C
	}
}

// publishedAt is when tenant's job id was acknowledged (zero: not).
func (g *generator) publishedAt(tenant, id string) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ackedAt[tenant+"/"+id]
}

// published returns the acknowledged and the unconfirmed ids per tenant.
func (g *generator) published() (acked, unconfirmed map[string][]string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	acked, unconfirmed = map[string][]string{}, map[string][]string{}
	for k, v := range g.acked {
		acked[k] = append([]string(nil), v...)
	}
	for k, v := range g.unconfirmed {
		unconfirmed[k] = append([]string(nil), v...)
	}
	return acked, unconfirmed
}
