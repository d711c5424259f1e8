package worker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
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
	parked := map[string][]string{} // replica → tenants parked there
	resize := func() {
		n, rank := replicaRank(p.cfg.ReplicaID, seen, p.cfg.Now(), interval)
		p.setLive(n, rank, parkedPeers(p.cfg.ReplicaID, seen, parked, p.cfg.Now(), interval))
	}
	var updates <-chan jetstream.KeyValueEntry
	var watcher jetstream.KeyWatcher
	watch := func() {
		// The values are small (this version's liveness records, with the
		// tenants parked on that replica); only a peer of an earlier
		// version still writes every lane's figures there, until it is
		// upgraded.
		w, err := kv.WatchAll(ctx)
		if err != nil {
			p.cond.Report(slog.LevelWarn, "", "watch replicas bucket failed", "error", err)
			return
		}
		p.cond.Clear("", "watch replicas bucket failed")
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
		case <-p.beatNow:
			p.beat(ctx, kv)
		case <-ticker.C:
			p.beat(ctx, kv)
			if updates == nil {
				watch()
				initial = true
			}
			resize()
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
				delete(parked, e.Key())
			} else {
				if initial {
					seen[e.Key()] = e.Created()
				} else {
					seen[e.Key()] = p.cfg.Now()
				}
				parked[e.Key()] = heartbeatParked(e.Value())
			}
			resize()
		}
	}
}

// condHeartbeat is the condlog condition of a replica whose liveness record
// cannot be written (peers stop counting it after 3 intervals).
const condHeartbeat = "write heartbeat failed"

// maxParkedInHeartbeat caps the tenants a liveness record lists as parked
// on its replica, so that the record stays small whatever the tenant count
// (≈ 70 KiB at most). Past it — thousands of tenants parked on one replica,
// e.g. its token endpoint unreachable for all — peers keep counting the
// replica for the tenants not listed: their org-scoped shares stay split,
// the safe side (under the quota, never over it).
const maxParkedInHeartbeat = 1000

// beatSoon asks the heartbeat loop to write a heartbeat now, so that peers
// learn at once that a lane parked or pulls again.
func (p *Pool) beatSoon() {
	select {
	case p.beatNow <- struct{}{}:
	default:
	}
}

// heartbeatParked reads the tenants parked on a peer from its heartbeat;
// an unreadable one has none.
func heartbeatParked(data []byte) []string {
	var hb struct {
		Parked []string `json:"parked"`
	}
	if json.Unmarshal(data, &hb) != nil {
		return nil
	}
	return hb.Parked
}

func (p *Pool) beat(ctx context.Context, kv jetstream.KeyValue) {
	hb := dispatcher.Heartbeat{Replica: p.cfg.ReplicaID, At: p.cfg.Now().UTC(), Pages: int(p.pages.Load())}
	for _, l := range p.laneList() {
		if l.parkedNowAt(p.cfg.Now()) {
			if len(hb.Parked) == maxParkedInHeartbeat {
				break // the record stays small; see maxParkedInHeartbeat
			}
			hb.Parked = append(hb.Parked, l.id)
		}
	}
	data, err := json.Marshal(hb)
	if err != nil {
		p.log.Error("encode heartbeat", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	if _, err := kv.Put(ctx, p.cfg.ReplicaID, data); err != nil {
		if ctx.Err() == nil {
			p.cond.Report(slog.LevelWarn, "", condHeartbeat, "error", err)
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) && p.cfg.Streams != nil {
			// A restarted nats-server forgot the in-memory replicas and
			// lanes buckets: make them again (the next beat writes).
			if err := dispatcher.EnsureVolatileBuckets(ctx, p.cfg.JS, p.cfg.Names, *p.cfg.Streams); err == nil {
				p.log.Info("replicas and lanes buckets were missing; created them again")
			}
		}
		return
	}
	p.cond.Clear("", condHeartbeat)
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

// setLive records the number of live replicas, this replica's rank among
// them and, per tenant, how many live peers have its lane parked; it
// re-sizes the lanes' limiters (and resume turns) when any changed.
func (p *Pool) setLive(n, rank int, parked map[string]int) {
	oldRank := p.rank.Swap(int64(rank))
	p.peersMu.Lock()
	samePark := maps.Equal(p.parkedPeers, parked)
	p.parkedPeers = parked
	p.peersMu.Unlock()
	if int(p.live.Swap(int64(n))) == n && int(oldRank) == rank && samePark {
		return
	}
	p.log.Info("live replicas changed; re-sizing org-scoped quotas", "replicas", n, "rank", rank, "parked_elsewhere", len(parked))
	for _, l := range p.laneList() {
		l.applyRate()
	}
}

// liveFor is the number of live replicas that share tenant's org-scoped
// quota: the live ones (self included) but peers whose lane of the tenant is
// parked (at least 1).
func (p *Pool) liveFor(tenant string) int {
	p.peersMu.Lock()
	parked := p.parkedPeers[tenant]
	p.peersMu.Unlock()
	return max(1, p.liveReplicas()-parked)
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
