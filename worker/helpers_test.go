package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

// env is one integration test's world: a real nats-server with the
// orgdispatch streams, and the platform simulator over real HTTP.
type env struct {
	t     *testing.T
	srv   *natsserver.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	names dispatcher.Names
	sim   *platformtest.Server
	hc    *http.Client
}

func newEnv(t *testing.T, simCfg platformtest.Config, ids ...string) *env {
	t.Helper()
	srv, nc, js := natstest.RunServer(t)
	for _, id := range ids {
		simCfg.Clients = append(simCfg.Clients, platformtest.ClientCred{ID: "client_" + id, Secret: "secret_" + id, Org: id})
	}
	simCfg.AutoCreate = true
	sim := platformtest.NewServer(t, simCfg)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &env{t: t, srv: srv, nc: nc, js: js, names: dispatcher.MustNames(""), sim: sim, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// tenant is a tenant of the simulator: 600/min, burst 1, concurrency 2,
// 5 attempts, token-scoped quota (so that replica counts do not matter
// unless a test says so).
func (e *env) tenant(id string, mod func(*tenants.Tenant)) tenants.Tenant {
	t := tenants.Tenant{
		ID: id, ClientID: "client_" + id, ClientSecret: tenants.NewSecret("secret_" + id),
		APIBase: e.sim.URL, TokenURL: e.sim.TokenURL(),
		RatePerMinute: 600, Burst: 1, Concurrency: 2, MaxAttempts: 5, QuotaScope: tenants.ScopeToken,
	}
	if mod != nil {
		mod(&t)
	}
	return t
}

func (e *env) provision(ts ...tenants.Tenant) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dispatcher.Provision(ctx, e.js, e.names, dispatcher.StreamConfig{}, ts); err != nil {
		e.t.Fatalf("provision: %v", err)
	}
}

// config is a pool configuration for the tenants, with short backoffs.
func (e *env) config(replica string, hooks Hooks, ts ...tenants.Tenant) Config {
	return Config{
		JS: e.js, Conn: e.nc, Names: e.names, Tenants: ts, ReplicaID: replica,
		HTTPClient: e.hc, Hooks: hooks, Logger: testLogger(e.t),
		ShutdownTimeout: 2 * time.Second, HeartbeatInterval: 200 * time.Millisecond,
		BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
	}
}

// start runs a pool until the returned stop is called (or the test ends);
// stop returns Run's error and how long the shutdown took.
func (e *env) start(cfg Config) (*Pool, func() (error, time.Duration)) {
	e.t.Helper()
	p, err := New(cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var runErr error
	var took time.Duration
	stop := func() (error, time.Duration) {
		once.Do(func() {
			start := time.Now()
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("Run did not return 30s after its context was cancelled")
			}
			took = time.Since(start)
		})
		return runErr, took
	}
	e.t.Cleanup(func() {
		if err, _ := stop(); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
	return p, stop
}

// publish queues a job for tenant with dispatcher's Publisher.
func (e *env) publish(tenant string, job dispatcher.Job) dispatcher.PublishResult {
	e.t.Helper()
	job.Tenant = tenant
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := dispatcher.NewPublisher(e.js, e.names).Publish(ctx, job)
	if err != nil {
		e.t.Fatalf("publish %s/%s: %v", tenant, job.ID, err)
	}
	return res
}

// publishRaw publishes data as is, for envelopes Publisher would refuse.
func (e *env) publishRaw(subject string, data []byte, msgID string) *jetstream.PubAck {
	e.t.Helper()
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	if msgID != "" {
		m.Header.Set(nats.MsgIdHdr, msgID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := e.js.PublishMsg(ctx, m)
	if err != nil {
		e.t.Fatalf("publish %s: %v", subject, err)
	}
	return ack
}

func getJob(id, campaign string) dispatcher.Job {
	return dispatcher.Job{ID: id, Op: "campaign.get", Params: json.RawMessage(fmt.Sprintf(`{"campaign_id":%q}`, campaign))}
}

// waitStatus waits (watching the status bucket) until the job's record is
// in state, and returns it.
func (e *env) waitStatus(tenant, id, state string, timeout time.Duration) dispatcher.JobStatus {
	e.t.Helper()
	st, err := natstest.WaitJobState(context.Background(), e.js, e.names, tenant, id, state, timeout)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// deadLetter returns the last dead letter stored for tenant and op.
func (e *env) deadLetter(tenant, op string) *jetstream.RawStreamMsg {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, e.names.DLQStream())
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, e.names.DLQSubject(tenant, op))
	if err != nil {
		e.t.Fatalf("dead letter of %s %s: %v", tenant, op, err)
	}
	return m
}

// apiRequests are the simulator's recorded API requests of a tenant's client.
func (e *env) apiRequests(tenant string) []platformtest.Request {
	return e.sim.Requests(platformtest.RequestFilter{ClientID: "client_" + tenant, PathPrefix: "/api/"})
}

// recHooks records what a pool reports and lets tests wait for it.
type recHooks struct {
	mu       sync.Mutex
	changed  chan struct{}
	finished map[string]map[string]int // tenant → outcome → count
	pauses   map[string][]pauseEvent   // tenant → PauseChanged calls
	limited  map[string][]time.Duration
	tokens   map[string]int
}

func newRecHooks() *recHooks {
	return &recHooks{
		changed:  make(chan struct{}),
		finished: map[string]map[string]int{},
		pauses:   map[string][]pauseEvent{},
		limited:  map[string][]time.Duration{},
		tokens:   map[string]int{},
	}
}

func (h *recHooks) update(fn func()) {
	h.mu.Lock()
	fn()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

func (h *recHooks) JobFinished(tenant, op, outcome string, elapsed time.Duration) {
	h.update(func() {
		if h.finished[tenant] == nil {
			h.finished[tenant] = map[string]int{}
		}
		h.finished[tenant][outcome]++
	})
}

func (h *recHooks) PlatformResponse(tenant string, status int, elapsed time.Duration) {}

func (h *recHooks) RateLimited(tenant string, retryAfter time.Duration) {
	h.update(func() { h.limited[tenant] = append(h.limited[tenant], retryAfter) })
}

func (h *recHooks) PauseChanged(tenant string, until time.Time) {
	at := time.Now()
	h.update(func() { h.pauses[tenant] = append(h.pauses[tenant], pauseEvent{until: until, at: at}) })
}

func (h *recHooks) TokenFetched(tenant string) {
	h.update(func() { h.tokens[tenant]++ })
}

func (h *recHooks) count(tenant, outcome string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.finished[tenant][outcome]
}

// pauseEvent is one PauseChanged call: the pause deadline (zero: resumed)
// and when the pool reported it.
type pauseEvent struct{ until, at time.Time }

// waitFor waits until cond (called with the hooks locked) holds, waking on
// every reported event.
func (h *recHooks) waitFor(t *testing.T, what string, timeout time.Duration, cond func(h *recHooks) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		ok := cond(h)
		ch := h.changed
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			h.mu.Lock()
			defer h.mu.Unlock()
			t.Fatalf("timed out after %s waiting for %s; finished %v, pauses %v, rate limited %v, tokens %v", timeout, what, h.finished, h.pauses, h.limited, h.tokens)
		}
	}
}

// requestLog collects the simulator's answers per client as they happen.
type requestLog struct {
	mu      sync.Mutex
	changed chan struct{}
	byID    map[string][]platformtest.Request
}

func watchRequests(sim *platformtest.Server) *requestLog {
	l := &requestLog{changed: make(chan struct{}), byID: map[string][]platformtest.Request{}}
	sim.OnRequest(func(r platformtest.Request) {
		if !strings.HasPrefix(r.Path, "/api/") {
			return
		}
		l.mu.Lock()
		l.byID[r.ClientID] = append(l.byID[r.ClientID], r)
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	})
	return l
}

func (l *requestLog) of(tenant string) []platformtest.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]platformtest.Request(nil), l.byID["client_"+tenant]...)
}

// waitFor waits until cond holds over tenant's requests.
func (l *requestLog) waitFor(t *testing.T, what string, timeout time.Duration, tenant string, cond func([]platformtest.Request) bool) []platformtest.Request {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		reqs := append([]platformtest.Request(nil), l.byID["client_"+tenant]...)
		ch := l.changed
		l.mu.Unlock()
		if cond(reqs) {
			return reqs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s; %d requests of %s", timeout, what, len(reqs), tenant)
		}
	}
}

// testLogger logs to the test when ORGDISPATCH_TEST_LOG is set, else discards.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("ORGDISPATCH_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// eventually polls cond every 20ms until it holds or timeout passes: for
// states that announce no event (a lane's limiter rate).
func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// sentLog records when API requests left the worker (after its gate).
type sentLog struct {
	mu sync.Mutex
	at []time.Time
}

func (l *sentLog) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...)
}

// sentRecorder is an http.RoundTripper that notes the time each API request
// (not token requests) is sent.
type sentRecorder struct {
	next http.RoundTripper
	log  *sentLog
}

func (s sentRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		s.log.mu.Lock()
		s.log.at = append(s.log.at, time.Now())
		s.log.mu.Unlock()
	}
	return s.next.RoundTrip(r)
}
