package dispatcher

import (
	"testing"

	"github.com/orgdispatch/orgdispatch/tenants"
)

func TestCapacity(t *testing.T) {
	lane := func(inFlight, conc int, done, rate float64) LaneReport {
		return LaneReport{State: LaneRunning, InFlight: inFlight, Concurrency: conc, DonePerSec: done, RatePerSec: rate}
	}
	waitingOn := func(l LaneReport, n int) LaneReport { l.RateWaiting = n; return l }
	for _, tc := range []struct {
		name      string
		scope     string
		lanes     []LaneReport
		waiting   uint64
		saturated bool
		wanted    int
	}{
		{"no lanes", tenants.ScopeToken, nil, 100, false, 0},
		// Slots wait on the limiter: done at the rate.
		{"held back by its rate", tenants.ScopeToken, []LaneReport{waitingOn(lane(4, 4, 10, 10), 3)}, 100, false, 1},
		// Just after a pause: done low over the lanes' window, but the
		// slots wait on the limiter.
		{"held back by its rate, just resumed", tenants.ScopeToken, []LaneReport{waitingOn(lane(4, 4, 2, 10), 3)}, 100, false, 1},
		{"org quota shared by three, at it", tenants.ScopeOrg, []LaneReport{lane(4, 4, 3.3, 3.33), lane(4, 4, 3.4, 3.33), lane(4, 4, 3.3, 3.34)}, 100, false, 3},
		// 1 slot, 10 done/s (100 ms answers), quota 100/s: 10 replicas.
		{"bound by its concurrency", tenants.ScopeToken, []LaneReport{lane(1, 1, 10, 100)}, 100, true, 10},
		// Two replicas, 4 slots each, 8 done/s in all (1 s answers),
		// org quota 20/s: k = ⌈20 × 8 ÷ (4 × 8)⌉ = 5.
		{"org scope, bound by concurrency", tenants.ScopeOrg, []LaneReport{lane(4, 4, 4, 10), lane(4, 4, 4, 10)}, 50, true, 5},
		// token scope: each replica's token has the whole quota (10/s);
		// two replicas doing 6/s in all are below it: ⌈10 × 8 ÷ (4 × 6)⌉ = 4.
		{"token scope, bound by concurrency", tenants.ScopeToken, []LaneReport{lane(4, 4, 3, 10), lane(4, 4, 3, 10)}, 50, true, 4},
		// token scope: three replicas doing 15/s in all, one token's quota
		// 10/s: above the quota, not saturated whatever their slots.
		{"token scope, past one token's quota", tenants.ScopeToken, []LaneReport{lane(4, 4, 5, 10), lane(4, 4, 5, 10), lane(4, 4, 5, 10)}, 50, false, 3},
		{"nothing waiting", tenants.ScopeToken, []LaneReport{lane(1, 1, 10, 100)}, 0, false, 1},
		{"slots free", tenants.ScopeToken, []LaneReport{lane(2, 4, 1, 100)}, 10, false, 1},
		{"one slot between two jobs", tenants.ScopeToken, []LaneReport{lane(1, 2, 10, 100)}, 10, true, 10},
		{"one of two waiting a moment on the limiter", tenants.ScopeToken, []LaneReport{waitingOn(lane(2, 2, 10, 100), 1)}, 10, true, 10},
		{"a single slot waiting on the limiter", tenants.ScopeToken, []LaneReport{waitingOn(lane(1, 1, 2, 10), 1)}, 10, false, 1},
		{"nothing done within the lanes' window (just started)", tenants.ScopeToken, []LaneReport{lane(4, 4, 0, 10), lane(4, 4, 0, 10)}, 10, false, 2},
		{"a parked lane does not count", tenants.ScopeToken, []LaneReport{lane(1, 1, 10, 100), {State: LaneCredentialsRejected, Parked: true, Concurrency: 50, RatePerSec: 100}}, 100, true, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sat, wanted := capacity(tc.scope, tc.lanes, tc.waiting)
			if sat != tc.saturated || wanted != tc.wanted {
				t.Errorf("capacity = saturated %v, %d replicas; want %v, %d", sat, wanted, tc.saturated, tc.wanted)
			}
		})
	}
}

// TestCapacityStable: once a saturated tenant has the replicas it asked
// for (each slot as fast as before), it asks for as many again.
func TestCapacityStable(t *testing.T) {
	const perSlot, quota, conc = 2.0, 30.0, 3 // jobs/s per slot, org quota, per replica
	n := 1
	for range 4 {
		var lanes []LaneReport
		for range n {
			lanes = append(lanes, LaneReport{State: LaneRunning, InFlight: conc, Concurrency: conc,
				DonePerSec: min(perSlot*conc, quota/float64(n)), RatePerSec: quota / float64(n)})
		}
		_, wanted := capacity(tenants.ScopeOrg, lanes, 1000)
		if n > 1 && wanted != n {
			t.Fatalf("with the %d replicas asked for, it asks for %d", n, wanted)
		}
		n = wanted
	}
	if n != 5 { // 30/s at 6/s per replica
		t.Errorf("settled at %d replicas, want 5", n)
	}
}

func TestScaling(t *testing.T) {
	st := func(id string, backlog uint64, paused, saturated bool, wanted, replicas int) TenantStatus {
		return TenantStatus{ID: id, Backlog: backlog, Paused: paused, Replicas: replicas,
			TenantDrain: TenantDrain{Saturated: saturated, ReplicasWanted: wanted}}
	}
	for _, tc := range []struct {
		name string
		ts   []TenantStatus
		want ScalingSignal
	}{
		{"nothing", nil, ScalingSignal{}},
		{"rate-bound only", []TenantStatus{st("a", 500, false, false, 2, 2)}, ScalingSignal{DispatchableBacklog: 500, ReplicasWanted: 2}},
		{"a saturated tenant", []TenantStatus{st("a", 500, false, false, 2, 2), st("b", 40, false, true, 6, 2)},
			ScalingSignal{DispatchableBacklog: 540, ScalableBacklog: 40, ReplicasWanted: 6}},
		{"paused tenants count nowhere", []TenantStatus{st("a", 500, true, true, 9, 2), st("b", 1, false, false, 0, 2)},
			ScalingSignal{DispatchableBacklog: 1, ReplicasWanted: 1}},
		{"no replica at all: scale from zero", []TenantStatus{st("a", 5, false, false, 0, 0), st("b", 0, false, false, 0, 0)},
			ScalingSignal{DispatchableBacklog: 5, ScalableBacklog: 5, ReplicasWanted: 1}},
		{"a tenant without lanes beside running replicas", []TenantStatus{st("a", 5, false, false, 0, 0), st("b", 0, false, false, 1, 1)},
			ScalingSignal{DispatchableBacklog: 5, ReplicasWanted: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Scaling(tc.ts); got != tc.want {
				t.Errorf("Scaling = %+v, want %+v", got, tc.want)
			}
		})
	}
}
