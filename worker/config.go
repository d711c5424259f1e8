package worker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// Defaults for the zero values of Config.
const (
	DefaultShutdownTimeout   = 10 * time.Second
	DefaultHeartbeatInterval = 2 * time.Second
	DefaultRetryAfter        = 60 * time.Second
	DefaultMaxPause          = 10 * time.Minute
	DefaultBackoffBase       = time.Second
	DefaultBackoffMax        = 5 * time.Minute
)

// Config configures a Pool. JS, Conn, Names and ReplicaID are required; the
// zero values of the durations mean the defaults above.
type Config struct {
	// JS is the JetStream context the pool pulls jobs from and writes state with.
	JS jetstream.JetStream
	// Conn is the connection under JS: the pool subscribes to pause advisories
	// and publishes outcome events on it.
	Conn *nats.Conn
	// Streams, when set, lets a lane whose consumer does not exist create it
	// (dispatcher.EnsureConsumerWith with these settings — pass the ones
	// given to dispatcher.Provision): a nats-server restart forgets
	// memory-storage consumers, and the lane makes its own again at once,
	// paused until its recorded pause ends, rather than waiting for a
	// provisioner. Nil: the lane retries until someone provisions it.
	Streams *dispatcher.StreamConfig
	// Names derives the stream, consumer, bucket and subject names.
	Names dispatcher.Names
	// Tenants are the lanes to run; Update changes them while running.
	Tenants []tenants.Tenant
	// ReplicaID names this replica in heartbeats and pause records; it must be
	// unique among live replicas (e.g. the pod name). Default: the host name
	// and a random suffix.
	ReplicaID string
	// HTTPClient is used by every tenant's platform client; nil means the
	// platform package's shared default.
	HTTPClient *http.Client
	// Logger receives the pool's log; nil discards it.
	Logger *slog.Logger
	// Hooks receive metrics events; nil means NopHooks.
	Hooks Hooks

	// ShutdownTimeout is how long Run lets jobs in flight finish once its
	// context is done before cancelling them (and handing them back).
	ShutdownTimeout time.Duration
	// HeartbeatInterval is how often the replica writes its heartbeat; peers
	// not heard from in 3 intervals no longer share org-scoped quotas.
	HeartbeatInterval time.Duration
	// DefaultRetryAfter is the pause after a 429 that says nothing about when
	// to retry.
	DefaultRetryAfter time.Duration
	// LimitsRefresh is how often a rate: auto lane with work reads the org's
	// limits again (it always reads them when it starts); 0:
	// DefaultLimitsRefresh.
	LimitsRefresh time.Duration
	// MaxPause caps one pause, whatever a 429 asked for.
	MaxPause time.Duration
	// BackoffBase and BackoffMax bound the exponential backoff (with full
	// jitter) between attempts of a transiently failing job, and the parking
	// of a lane whose credentials are rejected.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.DefaultRetryAfter <= 0 {
		c.DefaultRetryAfter = DefaultRetryAfter
	}
	if c.LimitsRefresh <= 0 {
		c.LimitsRefresh = DefaultLimitsRefresh
	}
	if c.MaxPause <= 0 {
		c.MaxPause = DefaultMaxPause
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Hooks == nil {
		c.Hooks = NopHooks{}
	}
	if c.ReplicaID == "" {
		c.ReplicaID = defaultReplicaID()
	}
	return c
}

func defaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

func (c Config) validate() error {
	var errs []error
	if c.JS == nil {
		errs = append(errs, errors.New("JS is required"))
	}
	if c.Conn == nil {
		errs = append(errs, errors.New("Conn is required"))
	}
	if c.Names.Prefix() == "" {
		errs = append(errs, errors.New("Names is required (dispatcher.NewNames)"))
	}
	if c.ReplicaID == "" {
		errs = append(errs, errors.New("ReplicaID is required"))
	}
	if c.BackoffMax < c.BackoffBase {
		errs = append(errs, fmt.Errorf("BackoffMax %s is less than BackoffBase %s", c.BackoffMax, c.BackoffBase))
	}
	seen := map[string]bool{}
	for _, t := range c.Tenants {
		if err := validTenant(t); err != nil {
			errs = append(errs, err)
		}
		if seen[t.ID] {
			errs = append(errs, fmt.Errorf("tenant %s listed twice", t.ID))
		}
		seen[t.ID] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("worker: config: %w", err)
	}
	return nil
}

// validTenant checks what a lane needs; the tenants package validates the
// rest when it loads the file.
func validTenant(t tenants.Tenant) error {
	switch {
	case !dispatcher.ValidTenantID(t.ID):
		return fmt.Errorf("invalid tenant id %q", t.ID)
	case t.RatePerMinute <= 0:
		return fmt.Errorf("tenant %s: rate_per_minute must be positive", t.ID)
	case t.Concurrency <= 0:
		return fmt.Errorf("tenant %s: concurrency must be positive", t.ID)
	case t.MaxAttempts <= 0:
		return fmt.Errorf("tenant %s: max_attempts must be positive", t.ID)
	case t.APIBase == "" || t.TokenURL == "":
		return fmt.Errorf("tenant %s: api base and token url are required", t.ID)
	}
	return nil
}

// Hooks receive the pool's metrics events. Implementations must not block:
// they are called on the jobs' paths. NopHooks implements every method.
type Hooks interface {
	// JobFinished reports one delivery's outcome: succeeded, retried (a
	// counted attempt failed and the job will run again), dead, rate_limited
	// (a 429: handed back, not counted) or handed_back (paused, credentials,
	// shutdown: not counted). op is what the job's subject names, before
	// any validation: it may be no operation at all.
	JobFinished(tenant, op, outcome string, elapsed time.Duration)
	// PlatformResponse reports every platform API answer (status 0: none).
	PlatformResponse(tenant string, status int, elapsed time.Duration)
	// RateLimited reports a 429 and the pause it asked for.
	RateLimited(tenant string, retryAfter time.Duration)
	// PauseChanged reports that this replica learnt of a tenant's pause, or
	// of its end (zero until).
	PauseChanged(tenant string, until time.Time)
	// TokenFetched reports a new access token for a tenant.
	TokenFetched(tenant string)
}

// TenantsObserver is implemented by Hooks that need to know the pool's
// tenants, e.g. to bound metric labels to them: the pool calls
// TenantsChanged with every lane's tenant id, sorted, in New and after each
// Update.
type TenantsObserver interface {
	TenantsChanged(ids []string)
}

// NopHooks is a Hooks that does nothing; embed it to implement only some
// methods.
type NopHooks struct{}

// JobFinished does nothing.
func (NopHooks) JobFinished(tenant, op, outcome string, elapsed time.Duration) {}

// PlatformResponse does nothing.
func (NopHooks) PlatformResponse(tenant string, status int, elapsed time.Duration) {}

// RateLimited does nothing.
func (NopHooks) RateLimited(tenant string, retryAfter time.Duration) {}

// PauseChanged does nothing.
func (NopHooks) PauseChanged(tenant string, until time.Time) {}

// TokenFetched does nothing.
func (NopHooks) TokenFetched(tenant string) {}

// Outcomes reported to Hooks.JobFinished.
const (
	OutcomeSucceeded   = "succeeded"
	OutcomeRetried     = "retried"
	OutcomeDead        = "dead"
	OutcomeRateLimited = "rate_limited"
	OutcomeHandedBack  = "handed_back"
)
