package reload_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/internal/reload"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// spec is one tenant of a test tenants file.
type spec struct {
	id, clientID, secret string
	extra                string // more YAML keys, e.g. "concurrency: 3"
}

func tenant(id string) spec {
	n := strings.TrimPrefix(id, "org_")
	return spec{id: id, clientID: "client_org" + n, secret: "secret" + n}
}

// env is a serving process in miniature: a real NATS server, the
// simulator over real HTTP, a running worker pool, and a tenants file
// watched by a tenants.Watcher whose OnChange is a Reconciler — wired the
// way orgdispatch serve wires them. Polling is off: reloads happen on the
// injected trigger, as on SIGHUP.
type env struct {
	t       *testing.T
	js      jetstream.JetStream
	names   dispatcher.Names
	sim     *platformtest.Server
	pool    *worker.Pool
	watcher *tenants.Watcher
	path    string
	trigger chan struct{}
	applied chan error
	logs    *logBuf
}

func newEnv(t *testing.T, ts ...spec) *env {
	t.Helper()
	_, nc, js := natstest.RunServer(t)
	sim := platformtest.NewServer(t, platformtest.Config{
		Clients: []platformtest.ClientCred{
			{ID: "client_org1", Secret: "secret1", Org: "org_1"},
			{ID: "client_org1b", Secret: "secret1b", Org: "org_1"},
			{ID: "client_org2", Secret: "secret2", Org: "org_2"},
			{ID: "client_org3", Secret: "secret3", Org: "org_3"},
		},
		AutoCreate: true,
	})
	e := &env{
		t: t, js: js, names: dispatcher.MustNames(""), sim: sim,
		path:    filepath.Join(t.TempDir(), "tenants.yaml"),
		trigger: make(chan struct{}),
		applied: make(chan error, 10),
		logs:    &logBuf{},
	}
	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	e.write(ts...)
	f, err := tenants.Load(e.path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := dispatcher.Provision(ctx, js, e.names, dispatcher.StreamConfig{}, f.Tenants); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	e.pool, err = worker.New(worker.Config{
		JS: js, Conn: nc, Names: e.names, Tenants: f.Tenants, ReplicaID: "r1",
		HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}, Logger: logger,
		ShutdownTimeout: 2 * time.Second, HeartbeatInterval: 200 * time.Millisecond,
		BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := reload.New(reload.Config{JS: js, Names: e.names, Pool: e.pool, Logger: logger}, f.Tenants)
	if err != nil {
		t.Fatal(err)
	}
	e.watcher, err = tenants.NewWatcher(tenants.WatchConfig{
		Path:    e.path,
		Current: f,
		OnChange: func(ctx context.Context, f *tenants.File) error {
			err := rec.Apply(ctx, f)
			e.applied <- err
			return err
		},
		Interval: -1,
		Trigger:  e.trigger,
		Logger:   logger,
	})
	if err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	poolDone, watchDone := make(chan error, 1), make(chan error, 1)
	go func() { poolDone <- e.pool.Run(runCtx) }()
	go func() { watchDone <- e.watcher.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		for name, ch := range map[string]chan error{"pool": poolDone, "watcher": watchDone} {
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30s", name)
			}
		}
		for _, secret := range []string{"secret1", "secret2", "secret3", "rotated1"} {
			if strings.Contains(e.logs.String(), secret) {
				t.Errorf("the log shows a secret (%s):\n%s", secret, e.logs.String())
			}
		}
	})
	<-e.watcher.Ready()
	return e
}

// write writes the tenants file.
func (e *env) write(ts ...spec) {
	e.t.Helper()
	var b strings.Builder
	b.WriteString("defaults: {rate_per_minute: 600, concurrency: 2, quota_scope: token, max_attempts: 3}\ntenants:\n")
	for _, s := range ts {
		fmt.Fprintf(&b, "  - id: %s\n    client_id: %s\n    client_secret: %s\n    api_base: %s\n    token_url: %s\n",
			s.id, s.clientID, s.secret, e.sim.URL, e.sim.TokenURL())
		for line := range strings.SplitSeq(s.extra, "\n") {
			if line != "" {
				fmt.Fprintf(&b, "    %s\n", line)
			}
		}
	}
	if err := os.WriteFile(e.path, []byte(b.String()), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// reload writes the file, triggers a reload (as SIGHUP does) and waits for
// the Reconciler to have applied it.
func (e *env) reload(ts ...spec) {
	e.t.Helper()
	e.write(ts...)
	e.trigger <- struct{}{}
	select {
	case err := <-e.applied:
		if err != nil {
			e.t.Fatalf("reload: %v", err)
		}
	case <-time.After(15 * time.Second):
		e.t.Fatalf("reload not applied within 15s\nlog:\n%s", e.logs.String())
	}
}

// publish queues a campaign.start job.
func (e *env) publish(tenant, id string) {
	e.t.Helper()
	_, err := dispatcher.NewPublisher(e.js, e.names).Publish(e.t.Context(), dispatcher.Job{
		ID: id, Tenant: tenant, Op: "campaign.start", Params: json.RawMessage(`{"campaign_id":"cmp-` + id + `"}`),
	})
	if err != nil {
		e.t.Fatalf("publish %s/%s: %v", tenant, id, err)
	}
}

// waitSucceeded watches the status bucket until the job succeeded.
func (e *env) waitSucceeded(tenant, id string) {
	e.t.Helper()
	e.waitState(tenant, id, dispatcher.StateSucceeded)
}

// waitState watches the status bucket until the job is in state.
func (e *env) waitState(tenant, id, state string) {
	e.t.Helper()
	if _, err := natstest.WaitJobState(e.t.Context(), e.js, e.names, tenant, id, state, 15*time.Second); err != nil {
		e.t.Fatalf("%v\nlog:\n%s", err, e.logs.String())
	}
}

func (e *env) consumer(tenant string) *jetstream.ConsumerInfo {
	e.t.Helper()
	c, err := e.js.Consumer(e.t.Context(), e.names.JobsStream(tenant), e.names.Consumer(tenant))
	if err != nil {
		e.t.Fatalf("consumer of %s: %v", tenant, err)
	}
	info, err := c.Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

func (e *env) lanes() []string {
	var ids []string
	for _, l := range e.pool.Lanes() {
		ids = append(ids, l.Tenant)
	}
	return ids
}

// apiRequests lists the simulator's outbound API requests by a client.
func (e *env) apiRequests(clientID string) []platformtest.Request {
	var out []platformtest.Request
	for _, r := range e.sim.Requests(platformtest.RequestFilter{}) {
		if r.ClientID == clientID && strings.HasPrefix(r.Path, "/api/v2/outbound/") {
			out = append(out, r)
		}
	}
	return out
}

func TestReloadAddsTenant(t *testing.T) {
	e := newEnv(t, tenant("org_1"))
	if _, err := e.js.Consumer(t.Context(), e.names.JobsStream("org_3"), e.names.Consumer("org_3")); !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("org_3's consumer before the reload: %v", err)
	}

	e.reload(tenant("org_1"), tenant("org_3"))
	if got := e.lanes(); !slices.Equal(got, []string{"org_1", "org_3"}) {
		t.Errorf("lanes = %v", got)
	}
	if info := e.consumer("org_3"); info.Config.MaxAckPending != dispatcher.ConsumerMaxAckPending {
		t.Errorf("org_3's consumer MaxAckPending = %d, want %d", info.Config.MaxAckPending, dispatcher.ConsumerMaxAckPending)
	}
	e.publish("org_3", "j1")
	e.waitSucceeded("org_3", "j1")
	if n := len(e.apiRequests("client_org3")); n != 1 {
		t.Errorf("client_org3 made %d API requests, want 1", n)
	}
	if !strings.Contains(e.logs.String(), "tenant added") {
		t.Errorf("log:\n%s", e.logs.String())
	}
}

func TestReloadChangesLimits(t *testing.T) {
	e := newEnv(t, tenant("org_1"), tenant("org_2"))
	changed := tenant("org_1")
	changed.extra = "concurrency: 3\nrate_per_minute: 1200"
	e.reload(changed, tenant("org_2"))

	for _, l := range e.pool.Lanes() {
		want, conc := 10.0, 2 // 600/min
		if l.Tenant == "org_1" {
			want, conc = 20, 3 // 1200/min
		}
		if l.Concurrency != conc {
			t.Errorf("lane %s concurrency %d, want %d", l.Tenant, l.Concurrency, conc)
		}
		if l.RatePerSec != want {
			t.Errorf("lane %s rate %g/s, want %g", l.Tenant, l.RatePerSec, want)
		}
	}
	e.publish("org_1", "j1")
	e.waitSucceeded("org_1", "j1")
	if log := e.logs.String(); !strings.Contains(log, "tenant changed") || !strings.Contains(log, "fields=rate_per_minute,concurrency") {
		t.Errorf("log does not say what changed:\n%s", log)
	}
}

// A new client id and secret: the lane's requests are made with the new
// client from then on.
func TestReloadChangesClient(t *testing.T) {
	e := newEnv(t, tenant("org_1"))
	e.publish("org_1", "j1")
	e.waitSucceeded("org_1", "j1")

	e.reload(spec{id: "org_1", clientID: "client_org1b", secret: "secret1b"})
	e.publish("org_1", "j2")
	e.waitSucceeded("org_1", "j2")
	if a, b := len(e.apiRequests("client_org1")), len(e.apiRequests("client_org1b")); a != 1 || b != 1 {
		t.Errorf("API requests: client_org1 %d, client_org1b %d; want 1 and 1", a, b)
	}
	if e.sim.Stats("client_org1b").TokensIssued != 1 {
		t.Errorf("client_org1b stats %+v", e.sim.Stats("client_org1b"))
	}
}

// A secret rotated at the platform: the old secret no longer gets a token,
// the job waits (credentials rejected), and the reloaded secret runs it.
func TestReloadRotatesSecret(t *testing.T) {
	e := newEnv(t, tenant("org_1"))
	e.publish("org_1", "j1")
	e.waitSucceeded("org_1", "j1")

	tokenRefused := make(chan struct{}, 1)
	e.sim.OnRequest(func(r platformtest.Request) {
		if r.Path == "/oauth/token" && r.Status == http.StatusUnauthorized {
			select {
			case tokenRefused <- struct{}{}:
			default:
			}
		}
	})
	e.sim.AddClient(platformtest.ClientCred{ID: "client_org1", Secret: "rotated1", Org: "org_1"})
	e.sim.ExpireTokens("client_org1")
	e.publish("org_1", "j2")
	select {
	case <-tokenRefused:
	case <-time.After(15 * time.Second):
		t.Fatalf("the old secret was never refused\nlog:\n%s", e.logs.String())
	}
	issued := e.sim.Stats("client_org1").TokensIssued

	e.reload(spec{id: "org_1", clientID: "client_org1", secret: "rotated1"})
	e.waitSucceeded("org_1", "j2")
	st := e.sim.Stats("client_org1")
	if st.TokensIssued != issued+1 {
		t.Errorf("tokens issued to client_org1: %d after the reload, want %d (one with the new secret)", st.TokensIssued, issued+1)
	}
	if st.Succeeded != 2 {
		t.Errorf("client_org1 stats %+v, want 2 successful requests", st)
	}
	if !strings.Contains(e.logs.String(), "fields=client_secret") {
		t.Errorf("log:\n%s", e.logs.String())
	}
}

// A removed tenant's lane drains (a job in flight finishes) and stops; its
// new jobs are refused; its consumer and its queued jobs stay, and run when
// the tenant comes back.
func TestReloadRemovesTenantKeepingJobs(t *testing.T) {
	e := newEnv(t, tenant("org_1"), tenant("org_2"))
	e.sim.SetLatency(500 * time.Millisecond) // less than the pool's 2s shutdown timeout
	e.publish("org_2", "before")
	e.waitState("org_2", "before", dispatcher.StateRunning)
	// Three jobs wait behind a pause, queued when the tenant goes.
	if err := dispatcher.Pause(t.Context(), e.js, e.names, "org_2", time.Now().Add(time.Hour), "test", "test"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e.publish("org_2", fmt.Sprintf("queued-%d", i))
	}

	e.reload(tenant("org_1")) // returns once org_2's lane has drained
	e.sim.SetLatency(0)
	e.waitSucceeded("org_2", "before")
	if got := e.lanes(); !slices.Equal(got, []string{"org_1"}) {
		t.Errorf("lanes after removing org_2: %v", got)
	}
	_, err := dispatcher.NewPublisher(e.js, e.names).Publish(t.Context(), dispatcher.Job{
		ID: "after", Tenant: "org_2", Op: "campaign.start", Params: json.RawMessage(`{"campaign_id":"cmp-after"}`),
	})
	var unknown *dispatcher.UnknownTenantError
	if !errors.As(err, &unknown) {
		t.Errorf("a job for the removed tenant: %v, want *UnknownTenantError", err)
	}
	// org_1 still runs: once its job is done, the pool has had every chance
	// to pull org_2's jobs, and must not have.
	e.publish("org_1", "j1")
	e.waitSucceeded("org_1", "j1")
	info := e.consumer("org_2")
	if info.NumPending != 3 || info.NumAckPending != 0 {
		t.Errorf("org_2's consumer: %d pending, %d unacked; want 3, 0", info.NumPending, info.NumAckPending)
	}
	if n := len(e.apiRequests("client_org2")); n != 1 {
		t.Errorf("client_org2 made %d API requests, want 1 (before the removal)", n)
	}
	if !strings.Contains(e.logs.String(), "tenant removed: its new jobs are refused and its lane drains; its consumer and queued jobs are kept") {
		t.Errorf("log:\n%s", e.logs.String())
	}

	// Resumed while it is away, so that it comes back unpaused. (Resumed
	// just after its lane came back, the lane kept handing the jobs back as
	// paused in about 1 run in 10 under -race: see the closing note of
	// issue 10 of 2026-12-02.)
	if err := dispatcher.Resume(t.Context(), e.js, e.names, "org_2"); err != nil {
		t.Fatal(err)
	}
	e.reload(tenant("org_1"), tenant("org_2"))
	for i := range 3 {
		e.waitSucceeded("org_2", fmt.Sprintf("queued-%d", i))
	}
	if n := len(e.apiRequests("client_org2")); n != 4 {
		t.Errorf("client_org2 made %d API requests, want 4", n)
	}
}

func TestReloadRejectsBadFile(t *testing.T) {
	e := newEnv(t, tenant("org_1"), tenant("org_2"))
	before := e.watcher.Current()

	bad := tenant("org_2")
	bad.extra = "concurency: 3" // misspelt
	e.write(tenant("org_1"), bad, tenant("org_3"))
	// The watcher takes one trigger at a time: the second send returns
	// only once the first reload attempt is over.
	e.trigger <- struct{}{}
	e.trigger <- struct{}{}
	select {
	case err := <-e.applied:
		t.Fatalf("a bad file was applied (%v)", err)
	default:
	}
	if e.watcher.Current() != before {
		t.Error("the watcher's current tenants changed")
	}
	if got := e.lanes(); !slices.Equal(got, []string{"org_1", "org_2"}) {
		t.Errorf("lanes = %v, want org_1 org_2", got)
	}
	if _, err := e.js.Consumer(t.Context(), e.names.JobsStream("org_3"), e.names.Consumer("org_3")); !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("org_3's consumer exists after a rejected file (%v)", err)
	}
	log := e.logs.String()
	if !strings.Contains(log, "tenants file rejected; the running tenants stay") ||
		!strings.Contains(log, "tenant=org_2") || !strings.Contains(log, "concurency") {
		t.Errorf("the log does not name the tenant and the field:\n%s", log)
	}

	// The running set still works.
	e.publish("org_2", "j1")
	e.waitSucceeded("org_2", "j1")
}

func TestDiff(t *testing.T) {
	a := tenants.Tenant{ID: "a", ClientID: "x", Concurrency: 1}
	b := tenants.Tenant{ID: "b", ClientID: "x", Concurrency: 1}
	c := tenants.Tenant{ID: "c", ClientID: "x", Concurrency: 1}
	b2 := b
	b2.ClientSecret = tenants.NewSecret("new")
	b2.Concurrency = 2
	got := reload.Diff([]tenants.Tenant{a, b}, []tenants.Tenant{c, b2})
	want := reload.Change{Added: []string{"c"}, Changed: []string{"b"}, Removed: []string{"a"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Diff = %+v, want %+v", got, want)
	}
	if f := reload.ChangedFields(b, b2); !slices.Equal(f, []string{"client_secret", "concurrency"}) {
		t.Errorf("ChangedFields = %v", f)
	}
	if got := reload.Diff([]tenants.Tenant{a}, []tenants.Tenant{a}); got.Added != nil || got.Changed != nil || got.Removed != nil {
		t.Errorf("Diff of equal lists = %+v", got)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := reload.New(reload.Config{Names: dispatcher.MustNames("")}, nil); err == nil {
		t.Error("New accepted a config without JS")
	}
}

// TestReloadConsumerStorage: a tenant added by a reload gets the consumer
// storage the process provisioned with.
func TestReloadConsumerStorage(t *testing.T) {
	for _, storage := range []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage} {
		t.Run(storage.String(), func(t *testing.T) {
			_, _, js := natstest.RunServer(t)
			names := dispatcher.MustNames("")
			streams := dispatcher.StreamConfig{ConsumerStorage: storage}
			first := []tenants.Tenant{{ID: "org_1", Concurrency: 1}}
			if err := dispatcher.Provision(t.Context(), js, names, streams, first); err != nil {
				t.Fatal(err)
			}
			rec, err := reload.New(reload.Config{JS: js, Names: names, Streams: streams}, first)
			if err != nil {
				t.Fatal(err)
			}
			next := append(first, tenants.Tenant{ID: "org_2", Concurrency: 1})
			if err := rec.Apply(t.Context(), &tenants.File{Tenants: next}); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			c, err := js.Consumer(t.Context(), names.JobsStream("org_2"), names.Consumer("org_2"))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.CachedInfo().Config.MemoryStorage; got != (storage == jetstream.MemoryStorage) {
				t.Errorf("added tenant's consumer: MemoryStorage %v with %v configured", got, storage)
			}
		})
	}
}

// TestReloadAudits: a reload records each added, changed and removed
// tenant, with the replica as who and the changed settings' names — never a
// secret.
func TestReloadAudits(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	first := []tenants.Tenant{
		{ID: "org_1", Concurrency: 1, ClientID: "c1", ClientSecret: tenants.NewSecret("old-secret-111")},
		{ID: "org_2", Concurrency: 1},
	}
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, first); err != nil {
		t.Fatal(err)
	}
	rec, err := reload.New(reload.Config{JS: js, Names: names, Audit: dispatcher.NewAuditor(js, names), Replica: "replica-7"}, first)
	if err != nil {
		t.Fatal(err)
	}
	next := []tenants.Tenant{
		{ID: "org_1", Concurrency: 3, ClientID: "c1", ClientSecret: tenants.NewSecret("new-secret-222")},
		{ID: "org_3", Concurrency: 1},
	}
	if err := rec.Apply(t.Context(), &tenants.File{Tenants: next}); err != nil {
		t.Fatal(err)
	}
	recs, err := dispatcher.NewAdmin(js, names).Audit(t.Context(), "", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]dispatcher.AuditRecord{}
	for _, r := range recs {
		got[r.Action+" "+r.Tenant] = r
		if r.Actor != "replica-7" || r.Time.IsZero() || r.Reason == "" {
			t.Errorf("record %+v: want actor replica-7, a time and a reason", r)
		}
		for _, v := range r.Detail {
			if strings.Contains(v, "secret-") {
				t.Errorf("record %+v shows a secret", r)
			}
		}
	}
	if len(recs) != 3 {
		t.Errorf("%d records, want 3: %+v", len(recs), recs)
	}
	for _, k := range []string{"tenant_added org_3", "tenant_changed org_1", "tenant_removed org_2"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %q record in %+v", k, recs)
		}
	}
	if f := got["tenant_changed org_1"].Detail["fields"]; f != "client_secret,concurrency" {
		t.Errorf("changed fields %q, want client_secret,concurrency", f)
	}
}
