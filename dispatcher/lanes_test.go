package dispatcher_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

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

// Heartbeats rewritten while a reader reads them: the reader still gets
// every replica. (A KV watcher counts a key written again during its
// delivery as one of the values it expects, and so can report the end of
// the current values before the last ones arrive.)
func TestAdminLanesWhileHeartbeatsAreRewritten(t *testing.T) {
	const replicas = 1000
	env := newAdminEnv(t)
	subject := func(i int) string { return "$KV." + env.names.ReplicasBucket() + "." + fmt.Sprintf("r%04d", i) }
	heartbeat := func(i int) []byte {
		data, err := json.Marshal(dispatcher.Heartbeat{Replica: fmt.Sprintf("r%04d", i), At: time.Now(), Lanes: []dispatcher.LaneReport{
			{Tenant: "org_a", State: dispatcher.LaneRunning},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	// Every replica's heartbeat, in order, at once.
	rewrite := func() error {
		for i := range replicas {
			if _, err := env.js.PublishAsync(subject(i), heartbeat(i)); err != nil {
				return err
			}
		}
		select {
		case <-env.js.PublishAsyncComplete():
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("heartbeats not acknowledged in 10s")
		}
	}
	if err := rewrite(); err != nil {
		t.Fatal(err)
	}
	admin := dispatcher.NewAdmin(env.js, env.names)
	for read := range 8 {
		var g errgroup.Group
		g.Go(rewrite)
		lanes, err := admin.Lanes(t.Context())
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n := len(lanes["org_a"]); n != replicas {
			t.Fatalf("read %d: the lanes of %d replicas, want %d", read, n, replicas)
		}
	}
}
