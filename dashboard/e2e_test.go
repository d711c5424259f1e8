package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dashboard"
	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

// stack is the whole of orgdispatch in one process, as `orgdispatch serve`
// runs it: an embedded nats-server, the platform simulator over HTTP, the
// streams and consumers, a worker pool and the HTTP API with the dashboard,
// all on 127.0.0.1.
type stack struct {
	URL   string // the API server, dashboard at /
	Token string
	sim   *platformtest.Server
	js    jetstream.JetStream
	names dispatcher.Names
	pub   *dispatcher.Publisher
}

// e2eTenant is a tenant of the test stack and the jobs per second the load
// generator feeds it.
type e2eTenant struct {
	id         string
	perMinute  int
	jobsPerSec int
	badSecret  bool // its OAuth client is configured with a wrong secret
}

func startStack(t *testing.T, ts []e2eTenant) *stack {
	t.Helper()
	_, nc, js := natstest.RunServer(t)

	simCfg := platformtest.Config{AutoCreate: true, Latency: 15 * time.Millisecond}
	for _, tt := range ts {
		simCfg.Clients = append(simCfg.Clients, platformtest.ClientCred{ID: "client_" + tt.id, Secret: "secret_" + tt.id, Org: tt.id})
	}
	sim := platformtest.NewServer(t, simCfg)

	names := dispatcher.MustNames("")
	var tenantList []tenants.Tenant
	for _, tt := range ts {
		secret := "secret_" + tt.id
		if tt.badSecret {
			secret = "not-the-secret"
		}
		tenantList = append(tenantList, tenants.Tenant{
			ID: tt.id, ClientID: "client_" + tt.id, ClientSecret: tenants.NewSecret(secret),
			APIBase: sim.URL, TokenURL: sim.TokenURL(),
			RatePerMinute: tt.perMinute, Burst: 1, Concurrency: 4, MaxAttempts: 5,
			QuotaScope: tenants.ScopeToken,
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	// Runs before natstest's and the simulator's cleanups: everything stops
	// while NATS is still up.
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("stack: %v", err)
		}
	})

	pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
	defer pcancel()
	if err := dispatcher.Provision(pctx, js, names, dispatcher.StreamConfig{}, tenantList); err != nil {
		t.Fatalf("provision: %v", err)
	}

	// Warnings are expected (stark's parked lane); errors are worth reading.
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	pool, err := worker.New(worker.Config{
		JS: js, Conn: nc, Names: names, Tenants: tenantList, ReplicaID: "worker-1",
		HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}, Logger: logger,
		ShutdownTimeout: 2 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("worker.New: %v", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := pool.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errs <- fmt.Errorf("worker pool: %w", err)
		}
	}()

	st := &stack{Token: "e2e-dashboard-token", sim: sim, js: js, names: names, pub: dispatcher.NewPublisher(js, names)}
	srv, err := api.New(api.Config{
		Admin:     dispatcher.NewAdmin(js, names),
		Publisher: st.pub,
		Token:     st.Token,
		Audit:     dispatcher.NewAuditor(js, names),
		Logger:    logger,
		Dashboard: dashboard.Handler(),
	})
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	st.URL = "http://" + ln.Addr().String()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			errs <- fmt.Errorf("api server: %w", err)
		}
	}()

	// Load: each tenant gets about its jobs per second, swelling and ebbing
	// over half a minute (each tenant in its own phase), in ten slices a
	// second until the test ends. (A load generator's pace, not a wait.)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		sent := make(map[string]int)
		due := make(map[string]float64)
		for n := 1; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for i, tt := range ts {
				swell := 1 + 0.5*math.Sin(2*math.Pi*float64(n)/300+float64(i))
				due[tt.id] += float64(tt.jobsPerSec) * swell / 10
				for float64(sent[tt.id]) < due[tt.id] {
					sent[tt.id]++
					if err := st.publish(ctx, tt.id, fmt.Sprintf("load-%d", sent[tt.id])); err != nil {
						if ctx.Err() == nil {
							errs <- err
						}
						return
					}
				}
			}
		}
	}()
	return st
}

func (s *stack) publish(ctx context.Context, tenant, id string) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.pub.Publish(pctx, dispatcher.Job{
		ID: id, Tenant: tenant, Op: "campaign.get",
		Params: json.RawMessage(`{"campaign_id":"c1"}`),
	})
	if err != nil {
		return fmt.Errorf("publish %s/%s: %w", tenant, id, err)
	}
	return nil
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestBrowserShowsTenantPausedAfter429 loads the dashboard from a running
// stack, gives one tenant a 429, and watches the page show that tenant — and
// only it — paused with a ticking countdown and the reason, then running
// again once Retry-After has passed. It saves the screenshot docs/dashboard.png
// is made from.
func TestBrowserShowsTenantPausedAfter429(t *testing.T) {
	fleet := []e2eTenant{
		{id: "acme", perMinute: 900, jobsPerSec: 9},
		{id: "globex", perMinute: 600, jobsPerSec: 6},
		{id: "initech", perMinute: 600, jobsPerSec: 4},
		{id: "umbrella", perMinute: 300, jobsPerSec: 7}, // more than its rate: a backlog builds
		{id: "hooli", perMinute: 300, jobsPerSec: 2},
		{id: "stark", perMinute: 300, jobsPerSec: 1, badSecret: true},
	}
	const victim, retryAfter = "globex", 10 * time.Second
	st := startStack(t, fleet)
	ctx := tab(t)

	// The API wants a token: the page asks for it.
	run(t, ctx, "load dashboard", chromedp.Navigate(st.URL+"/"))
	waitFor(t, ctx, "the token dialog", `document.getElementById('auth').open`)
	run(t, ctx, "enter the API token",
		chromedp.SendKeys(chromedp.ID("token"), st.Token),
		chromedp.Click(chromedp.ID("auth-submit")),
	)

	// Every tenant gets a lane; the one with the wrong secret shows it.
	waitFor(t, ctx, "a running lane for each good tenant and credentials rejected for stark", fmt.Sprintf(`(() => {
		const rows = [...document.querySelectorAll('.lane-row[data-tenant]')];
		const state = id => rows.find(r => r.dataset.tenant === id)?.dataset.state;
		return rows.length === %d && %s && state('stark') === 'creds';
	})()`, len(fleet), allRunning(fleet, "stark")))
	if got := eval[string](t, ctx, `document.querySelector('.lane-row[data-tenant="stark"] .badge-text').textContent`); got != "Credentials rejected" {
		t.Errorf("stark's badge reads %q, want %q (state in text, not colour alone)", got, "Credentials rejected")
	}

	// For the committed screenshot (ORGDISPATCH_SCREENSHOT_DIR set), let the
	// throughput charts fill for half a minute first.
	if os.Getenv("ORGDISPATCH_SCREENSHOT_DIR") != "" {
		waitFor(t, ctx, "30 s of throughput history", `+document.getElementById('t-spark').dataset.samples >= 30`)
	}

	// One 429 for the victim: the next request it makes gets it.
	st.sim.Throttle("client_"+victim, 1, retryAfter)
	if err := st.publish(context.Background(), victim, "trigger-429"); err != nil {
		t.Fatal(err)
	}
	sel := fmt.Sprintf(`.lane-row[data-tenant=%q]`, victim)
	waitFor(t, ctx, victim+" shown paused with a countdown and the reason", fmt.Sprintf(`(() => {
		const r = document.querySelector(%q);
		return r && r.dataset.state === 'paused'
			&& /^\d+:\d\d left$/.test(r.querySelector('.countdown').textContent)
			&& /429/.test(r.querySelector('.reason').textContent)
			&& r.querySelector('.badge-text').textContent === 'Paused';
	})()`, sel))

	rows := lanes(t, ctx)
	if rows[0].ID != victim {
		t.Errorf("first lane is %s, want the paused %s first", rows[0].ID, victim)
	}
	for _, r := range rows {
		if r.ID != victim && r.State == "paused" {
			t.Errorf("%s is shown paused too: a 429 must pause only its own tenant", r.ID)
		}
	}
	if !strings.Contains(rows[0].Reason, "Retry-After") {
		t.Errorf("pause reason %q does not say Retry-After", rows[0].Reason)
	}
	if got := eval[int](t, ctx, digits("t-paused")); got != 1 {
		t.Errorf("header shows %d paused, want 1", got)
	}
	if got := eval[int](t, ctx, digits("t-429")); got < 1 {
		t.Errorf("header shows %d 429s, want at least the one", got)
	}
	if got := eval[int](t, ctx, fmt.Sprintf(`+document.querySelector('%s .c-429').textContent.replace(/\D/g, '')`, sel)); got != 1 {
		t.Errorf("%s's lane shows %d 429s, want 1", victim, got)
	}
	before := rows[0].Countdown
	waitFor(t, ctx, "the countdown ticks", fmt.Sprintf(`document.querySelector('%s .countdown').textContent !== %q`, sel, before))

	screenshot(t, ctx, "dashboard.png")

	// Once Retry-After has passed, the lane runs again.
	waitFor(t, ctx, victim+" running again after Retry-After", fmt.Sprintf(`(() => {
		const r = document.querySelector(%q);
		return r && r.dataset.state === 'running' && r.querySelector('.countdown').textContent === '—';
	})()`, sel))
	if got := eval[int](t, ctx, digits("t-paused")); got != 0 {
		t.Errorf("header shows %d paused after the pause ended, want 0", got)
	}
}

// allRunning is a JavaScript condition (over a state(id) function) that
// every tenant of the fleet but except is running.
func allRunning(fleet []e2eTenant, except string) string {
	var conds []string
	for _, tt := range fleet {
		if tt.id != except {
			conds = append(conds, fmt.Sprintf("state(%q) === 'running'", tt.id))
		}
	}
	return strings.Join(conds, " && ")
}
