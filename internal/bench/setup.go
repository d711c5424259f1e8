package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

// benchNames are the NATS names every scenario uses (each run has its own
// server, so the default prefix never collides).
var benchNames = dispatcher.MustNames(dispatcher.DefaultPrefix)

// tenantID names tenant i of n: org_0 … org_9, org_000 … org_999.
func tenantID(i, n int) string {
	width := len(fmt.Sprint(max(n-1, 0)))
	return fmt.Sprintf("org_%0*d", width, i)
}

func clientID(tenant string) string { return "client_" + tenant }

// clientSecret is the simulator's test credential of a tenant: not a real
// secret, never printed anyway.
func clientSecret(tenant string) string { return "bench-secret-" + tenant }

// simClients are one OAuth client per tenant, each acting in its own org.
func simClients(ids []string) []platformtest.ClientCred {
	out := make([]platformtest.ClientCred, len(ids))
	for i, id := range ids {
		out[i] = platformtest.ClientCred{ID: clientID(id), Secret: clientSecret(id), Org: id}
	}
	return out
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = tenantID(i, n)
	}
	return out
}

// laneSpec is how a scenario configures one tenant for orgdispatch.
type laneSpec struct {
	ratePerMinute int
	auto          bool
	concurrency   int
	scope         string // tenants.ScopeToken (the default, tenants.DefaultQuotaScope) or ScopeOrg
}

// benchTenant is a resolved tenant pointing at the env's simulator.
func (e *env) benchTenant(id string, s laneSpec) tenants.Tenant {
	scope := s.scope
	if scope == "" {
		scope = tenants.DefaultQuotaScope
	}
	return tenants.Tenant{
		ID:            id,
		ClientID:      clientID(id),
		ClientSecret:  tenants.NewSecret(clientSecret(id)),
		APIBase:       e.simURL,
		TokenURL:      e.tokenURL(),
		RatePerMinute: s.ratePerMinute,
		RateAuto:      s.auto,
		Burst:         tenants.DefaultBurst,
		Concurrency:   s.concurrency,
		MaxAttempts:   tenants.DefaultMaxAttempts,
		QuotaScope:    scope,
		AllowedPaths:  append([]string(nil), platform.DefaultAllowedPathPrefixes...),
	}
}

// platformClient is a client of the simulator for the given OAuth client.
func (e *env) platformClient(id, secret string) (*platform.Client, error) {
	c, err := platform.New(platform.Config{APIBase: e.simURL, TokenURL: e.tokenURL(), ClientID: id, ClientSecret: secret})
	if err != nil {
		return nil, fmt.Errorf("bench: platform client %s: %w", id, err)
	}
	return c, nil
}

// publisher returns a publishFunc using orgdispatch's Publisher on the env's
// load generator connection, for tenants named by ids.
func (e *env) publisher(names dispatcher.Names, tenantIDs []string) publishFunc {
	p := dispatcher.NewPublisher(e.js, names)
	return func(ctx context.Context, tenant int, jobID string, params []byte) error {
		_, err := p.Publish(ctx, dispatcher.Job{ID: jobID, Tenant: tenantIDs[tenant], Op: platform.OpCampaignGet, Params: params})
		return err
	}
}

// rawPublisher publishes jobs as a NATS producer does (the job on its
// tenant's subject, its message id), for the shared-pool baseline whose one
// stream has no tenant consumers for the Publisher to check.
func (e *env) rawPublisher(names dispatcher.Names, tenantIDs []string) publishFunc {
	return func(ctx context.Context, tenant int, jobID string, params []byte) error {
		id := tenantIDs[tenant]
		body, err := json.Marshal(dispatcher.Job{ID: jobID, Tenant: id, Op: platform.OpCampaignGet, Params: params})
		if err != nil {
			return err
		}
		_, err = e.js.Publish(ctx, names.JobSubject(id, platform.OpCampaignGet), body, jetstream.WithMsgID(dispatcher.MsgID(id, jobID)))
		return err
	}
}

// workerRun is one running worker.Pool (one replica) on its own NATS
// connection.
type workerRun struct {
	pool   *worker.Pool
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

// startWorker starts a replica for ts with its own connection, labelled as
// the worker in CPU profiles.
func (e *env) startWorker(ctx context.Context, replica string, ts []tenants.Tenant, hooks worker.Hooks) (*workerRun, error) {
	return e.startWorkerWith(ctx, replica, ts, hooks, nil)
}

// startWorkerWith is startWorker with the pool's HTTP client (nil: the
// platform package's shared default).
func (e *env) startWorkerWith(ctx context.Context, replica string, ts []tenants.Tenant, hooks worker.Hooks, hc *http.Client) (*workerRun, error) {
	nc, js, err := e.connect(ctx, compWorker, replica)
	if err != nil {
		return nil, err
	}
	pool, err := worker.New(worker.Config{
		JS: js, Conn: nc, Names: e.names, Tenants: ts, ReplicaID: replica,
		Logger: e.log, Hooks: hooks, ShutdownTimeout: 2 * time.Second, HTTPClient: hc,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bench: worker %s: %w", replica, err)
	}
	w := &workerRun{pool: pool, nc: nc, done: make(chan error, 1)}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	withComponent(runCtx, compWorker, func(ctx context.Context) {
		go func() { w.done <- pool.Run(ctx) }()
	})
	return w, nil
}

// stop shuts the replica down and closes its connection.
func (w *workerRun) stop() error {
	w.cancel()
	err := <-w.done
	w.nc.Close()
	if err != nil {
		return fmt.Errorf("bench: worker: %w", err)
	}
	return nil
}

// waitPulling waits until every named consumer has at least `want` pull
// requests waiting (its lanes are running), or the deadline passes.
func waitPulling(ctx context.Context, js jetstream.JetStream, consumers []string, want int, timeout time.Duration) error {
	return waitPullingEvery(ctx, js, benchNames, consumers, want, timeout, 20*time.Millisecond)
}

// waitPullingEvery is waitPulling for the consumers of names' streams,
// listing them every interval (a listing of thousands of consumers is not
// free for the server).
func waitPullingEvery(ctx context.Context, js jetstream.JetStream, names dispatcher.Names, consumers []string, want int, timeout, interval time.Duration) error {
	deadline := time.Now().Add(timeout)
	need := make(map[string]bool, len(consumers))
	streams := map[string]bool{}
	for _, c := range consumers {
		need[c] = true
		streams[streamOfConsumer(names, c)] = true
	}
	for {
		for stream := range streams {
			st, err := js.Stream(ctx, stream)
			if err != nil {
				return fmt.Errorf("bench: stream %s: %w", stream, err)
			}
			list := st.ListConsumers(ctx)
			for info := range list.Info() {
				if info.NumWaiting >= want {
					delete(need, info.Name)
				}
			}
			if err := list.Err(); err != nil {
				// A server busy starting thousands of lanes may not answer a
				// listing page in time: look again until the deadline.
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) || time.Now().After(deadline) || ctx.Err() != nil {
					return fmt.Errorf("bench: list consumers: %w", err)
				}
			}
		}
		if len(need) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %d consumers have no pull waiting after %s", len(need), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// streamOfConsumer is the jobs stream of a tenant consumer, or the shared
// baseline's stream for any other consumer.
func streamOfConsumer(names dispatcher.Names, consumer string) string {
	if t, ok := names.TenantOfConsumer(consumer); ok {
		return names.JobsStream(t)
	}
	return names.LegacyJobsStream()
}

// hooks counts the worker's outcomes and remembers the pauses it reports.
type hooks struct {
	worker.NopHooks
	succeeded atomic.Int64
	mu        sync.Mutex
	outcomes  map[string]int64
	pauses    []pauseSeen
}

type pauseSeen struct {
	tenant string
	until  time.Time
	at     time.Time
}

func newHooks() *hooks { return &hooks{outcomes: map[string]int64{}} }

// JobFinished counts an outcome.
func (h *hooks) JobFinished(tenant, op, outcome string, elapsed time.Duration) {
	if outcome == worker.OutcomeSucceeded {
		h.succeeded.Add(1)
		return
	}
	h.mu.Lock()
	h.outcomes[outcome]++
	h.mu.Unlock()
}

func (h *hooks) succeededCount() int64 { return h.succeeded.Load() }

// PauseChanged remembers a pause (or its end: zero until).
func (h *hooks) PauseChanged(tenant string, until time.Time) {
	h.mu.Lock()
	h.pauses = append(h.pauses, pauseSeen{tenant: tenant, until: until, at: time.Now()})
	h.mu.Unlock()
}

// snapshot returns the outcomes other than succeeded, and the pauses seen.
func (h *hooks) snapshot() (map[string]int64, []pauseSeen) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int64, len(h.outcomes))
	for k, v := range h.outcomes {
		out[k] = v
	}
	return out, append([]pauseSeen(nil), h.pauses...)
}

// errJoin joins cleanup errors to the main one.
func errJoin(err error, more ...error) error { return errors.Join(append([]error{err}, more...)...) }
