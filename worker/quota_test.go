package worker

import (
	"maps"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/orgdispatch/orgdispatch/tenants"
)

func TestLaneRateSharesOrgQuota(t *testing.T) {
	org := tenants.Tenant{RatePerMinute: 600, QuotaScope: tenants.ScopeOrg}
	tok := tenants.Tenant{RatePerMinute: 600, QuotaScope: tenants.ScopeToken}
	for _, tc := range []struct {
		name string
		t    tenants.Tenant
		live int
		want rate.Limit
	}{
		{"org, alone", org, 1, 10},
		{"org, 3 replicas", org, 3, 10.0 / 3},
		{"org, unknown count", org, 0, 10},
		{"token, 3 replicas", tok, 3, 10},
		{"tiny quota floors", tenants.Tenant{RatePerMinute: 1, QuotaScope: tenants.ScopeOrg}, 10, minRate},
	} {
		if got := laneRate(tc.t, configuredRate(tc.t), tc.live); got != tc.want {
			t.Errorf("%s: %g, want %g", tc.name, got, tc.want)
		}
	}
}

func TestLiveReplicas(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	interval := 2 * time.Second
	seen := map[string]time.Time{
		"self":  now.Add(-time.Hour), // self always counts, once
		"fresh": now.Add(-time.Second),
		"late":  now.Add(-5 * time.Second),
		"gone":  now.Add(-6 * time.Second), // 3 intervals: no longer live
	}
	if got := liveReplicas("self", seen, now, interval); got != 3 {
		t.Errorf("live replicas: %d, want 3 (self, fresh, late)", got)
	}
	if got := liveReplicas("self", nil, now, interval); got != 1 {
		t.Errorf("alone: %d", got)
	}
}

func TestRateWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	w := newRateWindow(func() time.Time { return now })
	if got := w.perSecond(); got != 0 {
		t.Errorf("empty: %g", got)
	}
	for range 20 { // 4/s for 5 s
		w.add()
		now = now.Add(250 * time.Millisecond)
	}
	if got := w.perSecond(); got < 3.9 || got > 4.1 {
		t.Errorf("after 5 s at 4/s: %g", got)
	}
	now = now.Add(20 * time.Second)
	if got := w.perSecond(); got != 0 {
		t.Errorf("after 20 idle seconds: %g", got)
	}
}

// A peer whose lane of a tenant is parked takes no share of that tenant's
// quota; a stale peer and self do not count.
func TestParkedPeers(t *testing.T) {
	now := time.Now()
	const interval = time.Second
	seen := map[string]time.Time{"r1": now, "r2": now, "r3": now, "old": now.Add(-3 * interval)}
	parked := map[string][]string{
		"r1":   {"a", "b"}, // self
		"r2":   {"a"},
		"r3":   {"a", "c"},
		"old":  {"b"}, // no longer live
		"gone": {"b"}, // not seen at all
	}
	got := parkedPeers("r1", seen, parked, now, interval)
	want := map[string]int{"a": 2, "c": 1}
	if !maps.Equal(got, want) {
		t.Errorf("parkedPeers = %v, want %v", got, want)
	}
	if got := parkedPeers("r1", seen, map[string][]string{"r1": {"a"}}, now, interval); got != nil {
		t.Errorf("only self parked: %v, want none", got)
	}
}
