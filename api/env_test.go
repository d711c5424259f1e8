package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/metrics"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// env is a real API server over a real, provisioned NATS server.
type env struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	names   dispatcher.Names
	admin   *dispatcher.Admin
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	server  *api.Server
	url     string
	token   string
	hc      *http.Client // closes its connections when the test ends
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.LeakOptions()...)
}

type envOption func(*envConfig)

type envConfig struct {
	tenants []tenants.Tenant
	streams dispatcher.StreamConfig
	api     api.Config
}

func withAPIConfig(f func(*api.Config)) envOption {
	return func(c *envConfig) { f(&c.api) }
}

func withStreams(sc dispatcher.StreamConfig) envOption {
	return func(c *envConfig) { c.streams = sc }
}

func withTenants(ts ...tenants.Tenant) envOption {
	return func(c *envConfig) { c.tenants = ts }
}

const testToken = "t0p-s3cret-token"

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	cfg := envConfig{tenants: []tenants.Tenant{{ID: "org_a", Concurrency: 2}, {ID: "org_b", Concurrency: 3}}}
	cfg.api.Token = testToken
	for _, o := range opts {
		o(&cfg)
	}
	_, nc, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	if err := dispatcher.Provision(t.Context(), js, names, cfg.streams, cfg.tenants); err != nil {
		t.Fatalf("provision: %v", err)
	}
	admin := dispatcher.NewAdmin(js, names, dispatcher.WithTenantsCacheTTL(0))
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	reg.MustRegister(metrics.NewTenantCollector(admin))
	cfg.api.Admin = admin
	cfg.api.Publisher = dispatcher.NewPublisher(js, names)
	cfg.api.Gatherer = reg
	cfg.api.Audit = dispatcher.NewAuditor(js, names)
	if cfg.api.Ready == nil {
		cfg.api.Ready = api.ReadyCheck(nc, admin)
	}
	srv, err := api.New(cfg.api)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &env{nc: nc, js: js, names: names, admin: admin, reg: reg, metrics: m, server: srv, url: hs.URL, token: cfg.api.Token,
		hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// answer is an HTTP answer read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d is not JSON of %T: %v\n%s", a.status, v, err, a.body)
	}
}

func (a answer) errorText(t *testing.T) string {
	t.Helper()
	var e api.ErrorResponse
	a.decode(t, &e)
	if e.Error == "" {
		t.Fatalf("error answer %d without an error message: %s", a.status, a.body)
	}
	return e.Error
}

// call sends a request with the env's token; body may be a string, []byte
// or a value to encode as JSON (nil: no body).
func (e *env) call(t *testing.T, method, path string, body any) answer {
	t.Helper()
	return e.callWith(t, "Bearer "+e.token, method, path, body)
}

func (e *env) callWith(t *testing.T, authorization, method, path string, body any) answer {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json") // as api.Client does
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if e.token != "" && bytes.Contains(data, []byte(e.token)) {
		t.Fatalf("%s %s: the answer contains the API token", method, path)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

func (e *env) jobsInStream(t *testing.T) uint64 {
	t.Helper()
	n, err := dispatcher.QueuedJobs(t.Context(), e.js, e.names)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func job(tenant, id string) map[string]any {
	return map[string]any{"id": id, "tenant": tenant, "op": "campaign.start", "params": map[string]string{"campaign_id": "c-" + id}}
}

// storeDeadLetter stores a dead letter the way the worker does.
func (e *env) storeDeadLetter(t *testing.T, tenant, id, class string) uint64 {
	t.Helper()
	m := nats.NewMsg(e.names.DLQSubject(tenant, "campaign.start"))
	data, err := json.Marshal(job(tenant, id))
	if err != nil {
		t.Fatal(err)
	}
	m.Data = data
	m.Header.Set(dispatcher.HeaderTenant, tenant)
	m.Header.Set(dispatcher.HeaderOp, "campaign.start")
	m.Header.Set(dispatcher.HeaderJobID, id)
	m.Header.Set(dispatcher.HeaderErrorClass, class)
	m.Header.Set(dispatcher.HeaderError, fmt.Sprintf("job %s failed", id))
	m.Header.Set(dispatcher.HeaderHTTPStatus, "404")
	m.Header.Set(dispatcher.HeaderAttempts, "1")
	m.Header.Set(dispatcher.HeaderSubject, e.names.JobSubject(tenant, "campaign.start"))
	ack, err := e.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}
