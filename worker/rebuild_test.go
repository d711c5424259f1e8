package worker

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// Issue 10: with memory-storage consumers, a nats-server restart forgets
// every consumer. The lanes create theirs again at once, and what the
// server forgot is rebuilt from orgdispatch's own records: a job keeps the
// attempts it used (it is not given max_attempts afresh), and a paused
// tenant stays paused until its recorded deadline.
func TestMemoryConsumersRebuiltAfterServerRestart(t *testing.T) {
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
	nc, err := srv.Connect(nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	simCfg := platformtest.Config{AutoCreate: true}
	for _, id := range []string{"a", "b"} {
		simCfg.Clients = append(simCfg.Clients, platformtest.ClientCred{ID: "client_" + id, Secret: "secret_" + id, Org: id})
	}
	sim := platformtest.NewServer(t, simCfg)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	e := &env{t: t, srv: srv, nc: nc, js: js, names: dispatcher.MustNames(""), sim: sim, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}

	memory := dispatcher.StreamConfig{ConsumerStorage: jetstream.MemoryStorage}
	ta := e.tenant("a", func(t *tenants.Tenant) { t.MaxAttempts = 2; t.Concurrency = 1 })
	tb := e.tenant("b", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := dispatcher.Provision(ctx, js, e.names, memory, []tenants.Tenant{ta, tb}); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	if err := dispatcher.Pause(ctx, js, e.names, "b", until, "operator: maintenance", "test"); err != nil {
		t.Fatal(err)
	}

	// a's job fails with a 503 asking for 30 s: its retry waits that long,
	// so the restart comes between its first and second attempt.
	sim.FailNextRetryAfter("client_a", 2, http.StatusServiceUnavailable, 30*time.Second)
	cfg := e.config("r1", nil, ta, tb)
	cfg.BackoffMax = 30 * time.Second
	cfg.Streams = &memory
	e.start(cfg)
	e.publish("a", getJob("j1", "c1"))
	if st := e.waitStatus("a", "j1", dispatcher.StateRetrying, 10*time.Second); st.Attempts != 1 {
		t.Fatalf("before the restart: %+v, want attempt 1 failed", st)
	}

	srv.Shutdown()
	start()
	// The server forgot both consumers; the lanes make them again. The job
	// is delivered afresh (its delivery count starts at 1) and runs its
	// second and last attempt, which fails: it is dead-lettered as
	// exhausted after 2 attempts, not retried with 2 more.
	st := e.waitStatus("a", "j1", dispatcher.StateDead, 20*time.Second)
	if st.Attempts != 2 {
		t.Errorf("after the restart: %+v, want dead after attempt 2", st)
	}
	dlq, err := js.Stream(ctx, e.names.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.GetLastMsgForSubject(ctx, e.names.DLQSubject("a", "campaign.get"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get(dispatcher.HeaderAttempts); got != strconv.Itoa(2) || m.Header.Get(dispatcher.HeaderErrorClass) != ClassExhausted {
		t.Errorf("dead letter: attempts %q, class %q; want 2, %s", got, m.Header.Get(dispatcher.HeaderErrorClass), ClassExhausted)
	}
	if n := len(sim.Requests(platformtest.RequestFilter{ClientID: "client_a", PathPrefix: "/api/v2/outbound/campaigns/"})); n != 2 {
		t.Errorf("the platform saw %d requests of a, want 2 (one per attempt)", n)
	}

	// The in-memory replicas bucket is made again and the heartbeat lands.
	deadline := time.Now().Add(10 * time.Second)
	for {
		kv, err := js.KeyValue(ctx, e.names.ReplicasBucket())
		if err == nil {
			if _, err = kv.Get(ctx, "r1"); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat of r1 10 s after the restart: %v", err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}

	// b's consumer came back paused until the recorded deadline, with its
	// reason.
	paused, rec, err := dispatcher.PauseState(ctx, js, e.names, "b")
	if err != nil {
		t.Fatal(err)
	}
	if !paused.Equal(until) || rec == nil || rec.Reason != "operator: maintenance" {
		t.Errorf("b after the restart: paused until %v (want %v), record %+v", paused, until, rec)
	}
}
