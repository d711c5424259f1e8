package worker

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// Jobs succeed: acked, status succeeded, one outcome event each, lane figures.
func TestJobsSucceed(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", nil)
	e.provision(ta)
	hooks := newRecHooks()
	events := make(chan *nats.Msg, 10)
	sub, err := e.nc.ChanSubscribe(e.names.EventSubject("a", dispatcher.StateSucceeded), events)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	p, _ := e.start(e.config("r1", hooks, ta))
	for i := range 5 {
		e.publish("a", getJob(fmt.Sprintf("j%d", i), "c1"))
	}
	hooks.waitFor(t, "5 jobs", 10*time.Second, func(h *recHooks) bool { return h.finished["a"]["succeeded"] == 5 })
	st := e.waitStatus("a", "j4", dispatcher.StateSucceeded, 5*time.Second)
	if st.Attempts != 1 || st.HTTPStatus != 200 {
		t.Errorf("status %+v", st)
	}
	seen := map[string]bool{}
	for range 5 {
		select {
		case m := <-events:
			var ev struct {
				ID, Tenant, Op, Outcome string
				HTTPStatus              int `json:"http_status"`
			}
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Tenant != "a" || ev.Op != "campaign.get" || ev.Outcome != "succeeded" || ev.HTTPStatus != 200 {
				t.Errorf("event %s", m.Data)
			}
			seen[ev.ID] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d outcome events", len(seen))
		}
	}
	if len(seen) != 5 {
		t.Errorf("events for %d distinct jobs, want 5", len(seen))
	}
	lanes := p.Lanes()
	if len(lanes) != 1 || lanes[0].Succeeded != 5 || lanes[0].State != dispatcher.LaneRunning {
		t.Errorf("lanes %+v", lanes)
	}
}
