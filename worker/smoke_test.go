package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

func TestJobsSucceed(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", nil)
	e.provision(ta)
	hooks := newRecHooks()
	p, _ := e.start(e.config("r1", hooks, ta))
	for i := range 5 {
		e.publish("a", getJob(fmt.Sprintf("j%d", i), "c1"))
	}
	hooks.waitFor(t, "5 jobs", 10*time.Second, func(h *recHooks) bool { return h.finished["a"]["succeeded"] == 5 })
	st := e.waitStatus("a", "j4", dispatcher.StateSucceeded, 5*time.Second)
	if st.Attempts != 1 || st.HTTPStatus != 200 {
		t.Errorf("status %+v", st)
	}
	lanes := p.Lanes()
	if len(lanes) != 1 || lanes[0].Succeeded != 5 || lanes[0].State != dispatcher.LaneRunning {
		t.Errorf("lanes %+v", lanes)
	}
}
