package worker

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// Issue 12: a run_at job fires within a second of its time and not
// before, exactly once with three worker replicas, though nats-server
// restarted (on the same store) between the schedule's adding and its
// time. A cron schedule's occurrences each run under their own id.
func TestScheduledJobsRunOnceAcrossServerRestart(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	start := func() *natsserver.Server {
		t.Helper()
		srv, err := natsserver.Start(natsserver.Config{StoreDir: dir, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		return srv
	}
	srv := start()
	connect := func() (*nats.Conn, jetstream.JetStream) {
		t.Helper()
		nc, err := srv.Connect(nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}
	nc, js := connect()
	sim := platformtest.NewServer(t, platformtest.Config{AutoCreate: true, Clients: []platformtest.ClientCred{{ID: "client_a", Secret: "secret_a", Org: "a"}}})
	var mu sync.Mutex
	var calls []platformtest.Request
	sim.OnRequest(func(r platformtest.Request) {
		if r.Path == "/api/v2/outbound/campaigns/once" || r.Path == "/api/v2/outbound/campaigns/tick" {
			mu.Lock()
			calls = append(calls, r)
			mu.Unlock()
		}
	})
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	e := &env{t: t, srv: srv, nc: nc, js: js, names: dispatcher.MustNames(""), sim: sim, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	ta := e.tenant("a", nil)
	e.provision(ta)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	schedules := dispatcher.NewSchedules(js, e.names)
	runAt := time.Now().Add(4 * time.Second).Truncate(time.Second)
	if _, err := schedules.Add(ctx, "a", dispatcher.ScheduleSpec{Name: "once", RunAt: &runAt, Job: getJob("once", "once")}); err != nil {
		t.Fatal(err)
	}

	// Three replicas, each on a connection of its own.
	for _, r := range []string{"r1", "r2", "r3"} {
		rnc, rjs := connect()
		cfg := e.config(r, nil, ta)
		cfg.Conn, cfg.JS = rnc, rjs
		// The server forgets the in-memory replicas bucket: the pool makes it again.
		cfg.Streams = &dispatcher.StreamConfig{}
		e.start(cfg)
	}

	// Each replica is up (its heartbeat is in); they run through the
	// restart, as they would in production.
	eventually(t, "three heartbeats", 10*time.Second, func() bool {
		kv, err := js.KeyValue(ctx, e.names.ReplicasBucket())
		if err != nil {
			return false
		}
		for _, r := range []string{"r1", "r2", "r3"} {
			if _, err := kv.Get(ctx, r); err != nil {
				return false
			}
		}
		return true
	})
	srv.Shutdown()
	srv = start()

	t.Logf("restarted %s before run_at", time.Until(runAt).Round(time.Millisecond))
	st := e.waitStatus("a", "once", dispatcher.StateSucceeded, 20*time.Second)
	t.Logf("run_at job succeeded")
	mu.Lock()
	first := append([]platformtest.Request(nil), calls...)
	mu.Unlock()
	if len(first) != 1 {
		t.Fatalf("the platform saw %d calls of the run_at job, want 1", len(first))
	}
	if at := first[0].At; at.Before(runAt) || at.After(runAt.Add(time.Second)) {
		t.Errorf("the run_at job ran at %s, want within 1 s after %s", at.Format(time.RFC3339Nano), runAt.Format(time.RFC3339Nano))
	}
	if st.Attempts != 1 {
		t.Errorf("status %+v, want one attempt", st)
	}

	// Exactly once: the schedule is gone with its fire, its one fired copy
	// is the only message left in the schedules stream, and the jobs stream
	// holds nothing — there is nothing left that could run it again.
	if _, err := schedules.Get(ctx, "a", "once"); err == nil {
		t.Errorf("the run_at schedule is still there after it fired")
	}
	sst, err := js.Stream(ctx, e.names.SchedulesStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := sst.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 1 || info.State.Subjects[e.names.FiredSubject("a", dispatcher.PriorityNormal, "campaign.get")] != 1 {
		t.Errorf("schedules stream after the fire: %v, want one fired copy", info.State.Subjects)
	}
	eventually(t, "the jobs stream to be empty", 5*time.Second, func() bool {
		jst, err := js.Stream(ctx, e.names.JobsStream("a"))
		if err != nil {
			return false
		}
		info, err := jst.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})

	// A cron schedule: two occurrences, each its own job and record.
	if _, err := schedules.Add(ctx, "a", dispatcher.ScheduleSpec{Name: "tick", Cron: "*/2 * * * * *", TimeZone: "America/Chicago", Job: getJob("tick", "tick")}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	eventually(t, "two occurrences of the cron schedule", 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) >= 3
	})
	t.Logf("cron fired twice")
	if err := schedules.Cancel(ctx, "a", "tick"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ticks := calls[1:3]
	mu.Unlock()
	for _, c := range ticks {
		// Each fired at its even second; its record is <id>.<that time>.
		occ := c.At.Truncate(time.Second)
		if occ.Second()%2 != 0 {
			occ = occ.Add(-time.Second)
		}
		id := dispatcher.OccurrenceID("tick", occ)
		ids = append(ids, id)
		e.waitStatus("a", id, dispatcher.StateSucceeded, 5*time.Second)
	}
	if ids[0] == ids[1] {
		t.Errorf("two occurrences share the id %s", ids[0])
	}
}
