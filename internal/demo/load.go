package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
)

// loadStep is how often the load generator tops up each tenant's offer.
const loadStep = 50 * time.Millisecond

// counters are one tenant's figures shared by the load generator (which
// publishes) and the reporter (which learns how many jobs finished).
type counters struct {
	published atomic.Uint64
	finished  atomic.Uint64 // succeeded or dead-lettered, as of the last tick
	failed    atomic.Uint64 // publish errors
}

func (c *counters) backlog() uint64 {
	p, f := c.published.Load(), c.finished.Load()
	if f > p {
		return 0
	}
	return p - f
}

// load offers every tenant its planned jobs per second.
type load struct {
	pub        *dispatcher.Publisher
	plans      []plan
	counters   []*counters
	maxBacklog uint64
	log        *slog.Logger
	runID      string
}

func newLoad(pub *dispatcher.Publisher, plans []plan, cs []*counters, maxBacklog int, log *slog.Logger) *load {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &load{pub: pub, plans: plans, counters: cs, maxBacklog: uint64(maxBacklog), log: log, runID: hex.EncodeToString(b[:])}
}

func (l *load) run(ctx context.Context) error {
	var g errgroup.Group
	for i := range l.plans {
		g.Go(func() error { l.offer(ctx, i); return nil })
	}
	return g.Wait()
}

// demoOps are the operations the load rotates through: each is one platform
// request against a campaign the simulator creates on first use.
var demoOps = []string{
	platform.OpCampaignGet, platform.OpCampaignProgress, platform.OpCampaignStats,
	platform.OpCampaignStart, platform.OpCampaignProgress, platform.OpCampaignStop,
}

// offer publishes the tenant's jobs at its planned rate until ctx ends,
// holding back while its backlog is full.
func (l *load) offer(ctx context.Context, i int) {
	p, c := l.plans[i], l.counters[i]
	t := time.NewTicker(loadStep)
	defer t.Stop()
	last := time.Now()
	owed := 1.0 // start at once
	var n uint64
	for {
		for owed >= 1 {
			if c.backlog() >= l.maxBacklog {
				owed = 0 // do not catch up in a burst later
				break
			}
			n++
			job := dispatcher.Job{
				ID:     fmt.Sprintf("demo-%s-%d", l.runID, n),
				Tenant: p.tenant.ID,
				Op:     demoOps[n%uint64(len(demoOps))],
				Params: json.RawMessage(fmt.Sprintf(`{"campaign_id":"cmp-%d"}`, n%5+1)),
			}
			if _, err := l.pub.Publish(ctx, job); err != nil {
				if ctx.Err() != nil {
					return
				}
				c.failed.Add(1)
				l.log.Warn("demo: publish failed", "tenant", job.Tenant, "job_id", job.ID, "op", job.Op, "error", err)
			} else {
				c.published.Add(1)
			}
			owed--
		}
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			owed += p.offered * now.Sub(last).Seconds()
			last = now
		}
	}
}

func randomSecret() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
