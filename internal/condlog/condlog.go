// Package condlog keeps logs readable while something keeps failing: it logs
// a condition (a tenant's status writes failing, its lane parked, its pulls
// failing) once when it begins, counts its repeats instead of logging each,
// and sums them up in one line when the condition clears — or every
// interval while it lasts — with the count and the first and last
// occurrence.
//
// One line per condition, not one per job: under a fault that touches every
// job of a tenant the log stays as long as the list of things that are wrong.
package condlog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is how often a lasting condition is summed up when Config
// leaves Interval zero.
const DefaultInterval = time.Minute

// Config configures a Logger.
type Config struct {
	// Logger receives the lines; nil discards them.
	Logger *slog.Logger
	// Interval is how often a condition that lasts is summed up (count and
	// first/last occurrence since the last line). Default DefaultInterval.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Logger logs conditions, not occurrences. It is safe for concurrent use;
// the zero value is not: use New.
type Logger struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu     sync.Mutex
	active map[key]*state
}

// key names one condition: a tenant (or "" for the whole process) and what
// is wrong, e.g. "status write failed".
type key struct{ tenant, condition string }

// state is what is known of an active condition.
type state struct {
	level      slog.Level
	first      time.Time // its first occurrence
	last       time.Time // its last occurrence
	total      int       // occurrences since it began
	unreported int       // occurrences not logged yet
	reported   time.Time // when the last line about it was written
	attrs      []any     // the last occurrence's attributes
}

// New returns a Logger.
func New(cfg Config) *Logger {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Logger{log: cfg.Logger, interval: cfg.Interval, now: cfg.Now, active: map[key]*state{}}
}

// Report records one occurrence of condition for tenant. The first
// occurrence is logged at once at level, with attrs (slog key-value pairs,
// e.g. "job_id", id, "error", err); repeats are counted, and summed up in
// one line once Interval has passed since the last line about it, carrying
// the latest attrs.
func (l *Logger) Report(level slog.Level, tenant, condition string, attrs ...any) {
	now := l.now()
	k := key{tenant, condition}
	l.mu.Lock()
	s := l.active[k]
	if s == nil {
		s = &state{level: level, first: now, last: now, total: 1, reported: now, attrs: attrs}
		l.active[k] = s
		l.mu.Unlock()
		l.log.Log(context.Background(), level, condition, append(tenantAttr(tenant), attrs...)...)
		return
	}
	s.last, s.attrs, s.level = now, attrs, level
	s.total++
	s.unreported++
	if now.Sub(s.reported) < l.interval {
		l.mu.Unlock()
		return
	}
	line := s.summary()
	s.unreported, s.reported = 0, now
	l.mu.Unlock()
	l.log.Log(context.Background(), level, condition+" (still occurring)", append(tenantAttr(tenant), line...)...)
}

// Clear ends condition for tenant: if it was active, one line at Info says
// so with how often it occurred and when first and last. Clearing a
// condition that is not active does nothing, cheaply: callers may clear on
// every success.
func (l *Logger) Clear(tenant, condition string) {
	k := key{tenant, condition}
	l.mu.Lock()
	if len(l.active) == 0 {
		l.mu.Unlock()
		return
	}
	s := l.active[k]
	if s == nil {
		l.mu.Unlock()
		return
	}
	delete(l.active, k)
	line := s.summary()
	l.mu.Unlock()
	l.log.Info(condition+" (cleared)", append(tenantAttr(tenant), line...)...)
}

// Active reports whether condition is active for tenant.
func (l *Logger) Active(tenant, condition string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.active[key{tenant, condition}]
	return ok
}

// summary is a summing-up line's attributes; l.mu is held.
func (s *state) summary() []any {
	out := []any{
		"count", s.total,
		"suppressed", s.unreported,
		"first", s.first.UTC().Format(time.RFC3339Nano),
		"last", s.last.UTC().Format(time.RFC3339Nano),
	}
	return append(out, s.attrs...)
}

func tenantAttr(tenant string) []any {
	if tenant == "" {
		return nil
	}
	return []any{"tenant", tenant}
}
