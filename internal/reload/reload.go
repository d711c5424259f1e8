// Package reload applies a reloaded tenants file to a running process: it
// provisions the consumers of added and changed tenants and hands the new
// tenant list to the worker pool.
//
// What a reload does to each tenant:
//
//   - added: its durable consumer is created (dispatcher.EnsureConsumerWith,
//     with the process's StreamConfig) and the pool starts a lane for it;
//   - changed: its consumer is updated when its settings changed
//     (concurrency is the consumer's MaxAckPending; an active pause is
//     kept), and its lane takes the new rate, concurrency, attempts or
//     credentials (a new client id, secret or endpoint gets a new platform
//     client and token) without losing a message;
//   - removed: its subject is taken off its jobs stream
//     (dispatcher.RetireTenant), so its new jobs are refused, and its lane
//     drains on this replica (no more pulls; jobs in flight get the pool's
//     shutdown timeout, then are handed back). Its consumer and its queued
//     jobs are KEPT: a reload never deletes jobs.
//     They wait in the stream and run when the tenant comes back; to drop
//     them on purpose, delete the consumer (dispatcher.RemoveConsumer, or
//     `nats consumer rm`) and purge the tenant's subject.
//
// tenants.Watcher finds the new file; Reconciler.Apply is its OnChange.
package reload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/tenants"
	"github.com/orgdispatch/orgdispatch/worker"
)

// Config configures a Reconciler.
type Config struct {
	// JS provisions consumers. Required.
	JS jetstream.JetStream
	// Names are the NATS names in use.
	Names dispatcher.Names
	// Streams is the StreamConfig the process provisioned with: consumers
	// of added tenants get its ConsumerStorage. Zero: the defaults.
	Streams dispatcher.StreamConfig
	// Pool receives the new tenant list; nil in a process without workers
	// (orgdispatch api), which only provisions consumers.
	Pool *worker.Pool
	// Logger receives what each reload changed; nil discards.
	Logger *slog.Logger
	// Audit, when set, records each added, changed (the names of the
	// settings, never their values) and removed tenant, with Replica as
	// who.
	Audit *dispatcher.Auditor
	// Replica is this process's replica id, the actor of its records.
	Replica string
}

// Reconciler brings a process's consumers and lanes in line with a new
// tenants file. Apply is safe to call again with the same file (after an
// error, it redoes what failed).
type Reconciler struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	running map[string]tenants.Tenant // the tenants of the last Apply (or the start)
	pending map[string]bool           // tenants whose consumer could not be ensured yet
}

// New returns a Reconciler for a process currently running the tenants ts.
func New(cfg Config, ts []tenants.Tenant) (*Reconciler, error) {
	if cfg.JS == nil {
		return nil, errors.New("reload: config: JS is required")
	}
	if cfg.Names.Prefix() == "" {
		return nil, errors.New("reload: config: Names is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Reconciler{cfg: cfg, log: cfg.Logger, running: map[string]tenants.Tenant{}, pending: map[string]bool{}}
	for _, t := range ts {
		r.running[t.ID] = t
	}
	return r, nil
}

// Change is what a reload changed.
type Change struct {
	Added, Changed, Removed []string // tenant ids, sorted
}

// Diff compares two tenant lists by tenant id.
func Diff(old, next []tenants.Tenant) Change {
	before := make(map[string]tenants.Tenant, len(old))
	for _, t := range old {
		before[t.ID] = t
	}
	var c Change
	seen := make(map[string]bool, len(next))
	for _, t := range next {
		seen[t.ID] = true
		prev, ok := before[t.ID]
		switch {
		case !ok:
			c.Added = append(c.Added, t.ID)
		case !reflect.DeepEqual(prev, t):
			c.Changed = append(c.Changed, t.ID)
		}
	}
	for _, t := range old {
		if !seen[t.ID] {
			c.Removed = append(c.Removed, t.ID)
		}
	}
	slices.Sort(c.Added)
	slices.Sort(c.Changed)
	slices.Sort(c.Removed)
	return c
}

// ChangedFields names the settings that differ between two versions of a
// tenant (tenants file keys; a secret is named, never shown).
func ChangedFields(a, b tenants.Tenant) []string {
	var out []string
	add := func(changed bool, name string) {
		if changed {
			out = append(out, name)
		}
	}
	add(a.ClientID != b.ClientID, "client_id")
	add(a.ClientSecret.Reveal() != b.ClientSecret.Reveal(), "client_secret")
	add(a.Region != b.Region, "region")
	add(a.APIBase != b.APIBase, "api_base")
	add(a.TokenURL != b.TokenURL, "token_url")
	add(a.RatePerMinute != b.RatePerMinute, "rate_per_minute")
	add(a.RateAuto != b.RateAuto, "rate")
	add(a.Burst != b.Burst, "burst")
	add(a.Concurrency != b.Concurrency, "concurrency")
	add(a.MaxAttempts != b.MaxAttempts, "max_attempts")
	add(a.QuotaScope != b.QuotaScope, "quota_scope")
	add(!slices.Equal(a.AllowedPaths, b.AllowedPaths), "allowed_paths")
	return out
}

// Apply makes f's tenants the running ones: it ensures the consumers of
// added and changed tenants (and of any whose consumer failed before), then
// updates the pool. Removed tenants' lanes drain; their consumers and jobs
// stay. It returns every failure joined; the tenants whose consumer failed
// are tried again by the next Apply.
func (r *Reconciler) Apply(ctx context.Context, f *tenants.File) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	old := make([]tenants.Tenant, 0, len(r.running))
	for _, t := range r.running {
		old = append(old, t)
	}
	change := Diff(old, f.Tenants)

	ensure := map[string]bool{}
	for _, id := range change.Added {
		ensure[id] = true
	}
	for _, id := range change.Changed {
		ensure[id] = true
	}
	for id := range r.pending {
		ensure[id] = true
	}

	var errs []error
	for _, t := range f.Tenants {
		if !ensure[t.ID] {
			continue
		}
		if _, err := dispatcher.EnsureConsumerWith(ctx, r.cfg.JS, r.cfg.Names, r.cfg.Streams, t); err != nil {
			r.pending[t.ID] = true
			r.log.Error("tenant consumer not provisioned; will retry", "tenant", t.ID, "error", err)
			errs = append(errs, fmt.Errorf("tenant %s: %w", t.ID, err))
			continue
		}
		delete(r.pending, t.ID)
	}
	for _, id := range change.Removed {
		delete(r.pending, id)
	}

	if r.cfg.Pool != nil {
		if err := r.cfg.Pool.Update(ctx, f.Tenants); err != nil {
			errs = append(errs, err)
		}
	}

	for _, id := range change.Added {
		r.log.Info("tenant added", "tenant", id)
		r.audit(ctx, dispatcher.AuditTenantAdded, id, nil)
	}
	for _, id := range change.Changed {
		fields := strings.Join(ChangedFields(r.running[id], mustGet(f, id)), ",")
		r.log.Info("tenant changed", "tenant", id, "fields", fields)
		r.audit(ctx, dispatcher.AuditTenantChanged, id, map[string]string{"fields": fields})
	}
	for _, id := range change.Removed {
		if err := dispatcher.RetireTenant(ctx, r.cfg.JS, r.cfg.Names, id); err != nil {
			errs = append(errs, err)
		}
		r.log.Info("tenant removed: its new jobs are refused and its lane drains; its consumer and queued jobs are kept", "tenant", id)
		r.audit(ctx, dispatcher.AuditTenantRemoved, id, nil)
	}

	r.running = make(map[string]tenants.Tenant, len(f.Tenants))
	for _, t := range f.Tenants {
		r.running[t.ID] = t
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	return nil
}

// audit records one tenant's change; a failure is logged, the reload
// stands.
func (r *Reconciler) audit(ctx context.Context, action, tenant string, detail map[string]string) {
	if r.cfg.Audit == nil {
		return
	}
	rec := dispatcher.AuditRecord{Actor: r.cfg.Replica, Action: action, Tenant: tenant, Reason: "tenants file reloaded", Detail: detail}
	if err := r.cfg.Audit.Record(ctx, rec); err != nil {
		r.log.Error("audit record not written", "op", action, "tenant", tenant, "error", err)
	}
}

func mustGet(f *tenants.File, id string) tenants.Tenant {
	t, _ := f.Get(id)
	return t
}
