package worker

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/orgdispatch/orgdispatch/tenants"
)

// minRate is the slowest a lane is ever paced: one request in two minutes. A
// limiter at zero would never let the lane find out that its quota is back.
const minRate = 1.0 / 120

// laneRate is one replica's share of a tenant's quota, in requests per
// second. perSec is the whole quota: the configured rate_per_minute / 60, or
// what auto-rate learnt from the platform's headers. An org-scoped quota is
// shared equally by the live replicas; a token-scoped one belongs to every
// replica's own token in full.
func laneRate(t tenants.Tenant, perSec float64, live int) rate.Limit {
	if t.QuotaScope != tenants.ScopeToken && live > 1 {
		perSec /= float64(live)
	}
	if perSec < minRate {
		perSec = minRate
	}
	return rate.Limit(perSec)
}

// configuredRate is the tenant's configured quota in requests per second.
func configuredRate(t tenants.Tenant) float64 { return float64(t.RatePerMinute) / 60 }

// liveReplicas counts the replicas heard from within 3 heartbeat intervals,
// self included (always at least 1).
func liveReplicas(self string, seen map[string]time.Time, now time.Time, interval time.Duration) int {
	n, _ := replicaRank(self, seen, now, interval)
	return n
}

// replicaRank counts the live replicas (self included) and says where self
// stands among them in replica id order (0 = first). Replicas use their rank
// to take turns after a pause (see gate.setResumeOffset).
func replicaRank(self string, seen map[string]time.Time, now time.Time, interval time.Duration) (live, rank int) {
	live = 1
	for id, at := range seen {
		if id == self || now.Sub(at) >= 3*interval {
			continue
		}
		live++
		if id < self {
			rank++
		}
	}
	return live, rank
}

// parkedPeers counts, per tenant, the live peers (self excluded) whose lane
// of it is parked: they pull none of its jobs, so they take no share of its
// quota.
func parkedPeers(self string, seen map[string]time.Time, parked map[string][]string, now time.Time, interval time.Duration) map[string]int {
	var out map[string]int
	for id, tenants := range parked {
		if at, ok := seen[id]; id == self || !ok || now.Sub(at) >= 3*interval {
			continue
		}
		for _, t := range tenants {
			if out == nil {
				out = map[string]int{}
			}
			out[t]++
		}
	}
	return out
}
