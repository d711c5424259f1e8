package worker

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// heartbeat writes this replica's liveness record (dispatcher.Heartbeat: its
// id, the time and how many pages of lane figures it has, never the figures
// themselves) to the replicas bucket every HeartbeatInterval, and watches
// the bucket (keys and timestamps only) to count the live replicas that
// share org-scoped quotas. When the count changes, every lane's limiter is
// re-sized to quota ÷ live replicas. On the way out it deletes its own key,
// so that the others take over its share at once instead of after 3
// intervals. The lanes' figures go to the lanes bucket on their own
// schedule (figures), so how many tenants there are, or how long their
// errors, never delays or breaks the liveness record.
//
// A peer counts as live while its last heartbeat is less than 3 intervals
// old, measured on this replica's clock from when the update arrived (the
// server's timestamp for entries that were there before the watch began), so
// clock skew between replicas does not matter.
//
// ready is closed once the peers already in the bucket are known, so that
// lanes start at their share rather than at the whole quota.
func (p *Pool) heartbeat(ctx context.Context, kv jetstream.KeyValue, ready chan<- struct{}) {
	interval := p.cfg.HeartbeatInterval
	var readyOnce sync.Once
	markReady := func() { readyOnce.Do(func() { close(ready) }) }
	defer markReady()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	seen := map[string]time.Time{}
	var updates <-chan jetstream.KeyValueEntry
	var watcher jetstream.KeyWatcher
	watch := func() {
		// MetaOnly: a peer's key and time are all it takes, and a peer of
		// an earlier version still writes every lane's figures there.
		w, err := kv.WatchAll(ctx, jetstream.MetaOnly())
		if err != nil {
			p.log.Warn("watch replicas bucket", "error", err)
			return
		}
		watcher, updates = w, w.Updates()
	}
	watch()
	initial := true
	if updates == nil {
		markReady()
	}
	p.beat(ctx, kv)
	for {
		select {
		case <-ctx.Done():
			if watcher != nil {
				_ = watcher.Stop()
			}
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusTimeout)
			if err := kv.Delete(dctx, p.cfg.ReplicaID); err != nil {
				p.log.Warn("remove heartbeat", "error", err)
			}
			cancel()
			return
		case <-ticker.C:
			p.beat(ctx, kv)
			if updates == nil {
				watch()
				initial = true
			}
			p.setLive(replicaRank(p.cfg.ReplicaID, seen, p.cfg.Now(), interval))
		case e, ok := <-updates:
			if !ok {
				updates, watcher = nil, nil
				continue
			}
			if e == nil {
				initial = false // the bucket's current values have all arrived
				markReady()
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				delete(seen, e.Key())
			} else if initial {
				seen[e.Key()] = e.Created()
			} else {
				seen[e.Key()] = p.cfg.Now()
			}
			p.setLive(replicaRank(p.cfg.ReplicaID, seen, p.cfg.Now(), interval))
		}
	}
}

func (p *Pool) beat(ctx context.Context, kv jetstream.KeyValue) {
	hb := dispatcher.Heartbeat{Replica: p.cfg.ReplicaID, At: p.cfg.Now().UTC(), Pages: int(p.pages.Load())}
	data, err := json.Marshal(hb)
	if err != nil {
		p.log.Error("encode heartbeat", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	if _, err := kv.Put(ctx, p.cfg.ReplicaID, data); err != nil && ctx.Err() == nil {
		p.log.Warn("write heartbeat", "error", err)
	}
}

// figures writes the lanes' figures to the lanes bucket every
// HeartbeatInterval (see pageWriter) until ctx is done, and keeps the page
// count the heartbeat announces.
func (p *Pool) figures(ctx context.Context, w *pageWriter) {
	ticker := time.NewTicker(p.cfg.HeartbeatInterval)
	defer ticker.Stop()
	for {
		p.pages.Store(int64(w.write(ctx, p.laneReports())))
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// setLive records the number of live replicas and this replica's rank among
// them, and re-sizes the lanes' limiters (and resume turns) when either
// changed.
func (p *Pool) setLive(n, rank int) {
	oldRank := p.rank.Swap(int64(rank))
	if int(p.live.Swap(int64(n))) == n && int(oldRank) == rank {
		return
	}
	p.log.Info("live replicas changed; re-sizing org-scoped quotas", "replicas", n, "rank", rank)
	for _, l := range p.laneList() {
		l.applyRate()
	}
}

// replicaRank is this replica's last known rank among the live replicas.
func (p *Pool) replicaRank() int { return int(p.rank.Load()) }

// liveReplicas is the last count of live replicas (at least 1).
func (p *Pool) liveReplicas() int {
	if n := p.live.Load(); n > 0 {
		return int(n)
	}
	return 1
}
