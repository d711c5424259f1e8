package dispatcher_test

import (
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func TestAdminLanesReadsPagedFigures(t *testing.T) {
	env := newAdminEnv(t)
	now := time.Now()
	earlier := now.Add(-time.Second)
	rb, lb := env.names.ReplicasBucket(), env.names.LanesBucket()

	// r1: two current pages; org_b moved from page 1 to page 0 and page 1
	// was not rewritten since, and a stale page 2 from when it had more
	// tenants.
	env.put(t, rb, "r1", dispatcher.Heartbeat{Replica: "r1", At: now, Pages: 2})
	env.put(t, lb, dispatcher.LanePageKey("r1", 0), dispatcher.LanePage{Replica: "r1", Page: 0, At: now, Lanes: []dispatcher.LaneReport{
		{Tenant: "org_a", State: dispatcher.LaneRunning, Succeeded: 1},
		{Tenant: "org_b", State: dispatcher.LaneRunning, Succeeded: 20},
	}})
	env.put(t, lb, dispatcher.LanePageKey("r1", 1), dispatcher.LanePage{Replica: "r1", Page: 1, At: earlier, Lanes: []dispatcher.LaneReport{
		{Tenant: "org_b", State: dispatcher.LaneRunning, Succeeded: 10},
		{Tenant: "org_c", State: dispatcher.LaneRunning, Succeeded: 3},
	}})
	env.put(t, lb, dispatcher.LanePageKey("r1", 2), dispatcher.LanePage{Replica: "r1", Page: 2, At: earlier, Lanes: []dispatcher.LaneReport{
		{Tenant: "org_stale", State: dispatcher.LaneRunning},
	}})
	// r2 is of an earlier version: its lanes are in its heartbeat.
	env.put(t, rb, "r2", dispatcher.Heartbeat{Replica: "r2", At: now, Lanes: []dispatcher.LaneReport{
		{Tenant: "org_a", State: dispatcher.LaneRunning, Succeeded: 100},
	}})
	// r3 is gone (no heartbeat): its page does not count.
	env.put(t, lb, dispatcher.LanePageKey("r3", 0), dispatcher.LanePage{Replica: "r3", Page: 0, At: now, Lanes: []dispatcher.LaneReport{
		{Tenant: "org_a", State: dispatcher.LaneRunning, Succeeded: 1000},
	}})

	lanes, err := dispatcher.NewAdmin(env.js, env.names).Lanes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sum := func(id string) (n int, succeeded uint64) {
		for _, l := range lanes[id] {
			n++
			succeeded += l.Succeeded
		}
		return n, succeeded
	}
	for id, want := range map[string][2]uint64{"org_a": {2, 101}, "org_b": {1, 20}, "org_c": {1, 3}} {
		n, succeeded := sum(id)
		if uint64(n) != want[0] || succeeded != want[1] {
			t.Errorf("%s: %d lanes, %d succeeded; want %d lanes, %d succeeded (%+v)", id, n, succeeded, want[0], want[1], lanes[id])
		}
	}
	if len(lanes) != 3 {
		t.Errorf("lanes of %d tenants, want org_a, org_b, org_c only: %+v", len(lanes), lanes)
	}
}
