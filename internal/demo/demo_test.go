package demo

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/orgdispatch/orgdispatch/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.LeakOptions()...) }

// syncBuffer is a bytes.Buffer safe for the demo's writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestQuietTenantsKeepTheirRateWhileTheNoisyOnePauses runs the real demo —
// embedded NATS on a temporary store, the simulator over HTTP on loopback, the
// worker pool — with time compressed further (10 requests per 2 s window,
// ticks of 200 ms), and stops it as soon as the figures show the point of the
// demo: org_noisy was rate limited and paused, and during its pause every
// quiet tenant kept finishing jobs, without a single 429 or pause of its own.
func TestQuietTenantsKeepTheirRateWhileTheNoisyOnePauses(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	type mark struct {
		pausedAt time.Time
		done     map[string]uint64 // quiet tenants' Done when org_noisy was first seen paused
	}
	var (
		first   *mark
		proved  = make(chan Snapshot, 1)
		quietOK = func(s Snapshot) bool {
			for _, f := range s.Tenants {
				if !f.Noisy && f.Done < first.done[f.Tenant]+2 {
					return false
				}
			}
			return true
		}
	)
	cfg := Config{
		Tenants:    3,
		Limit:      10,
		Window:     2 * time.Second,
		Tick:       200 * time.Millisecond,
		Latency:    5 * time.Millisecond,
		NATSPort:   -1,
		StoreDir:   t.TempDir(),
		MaxBacklog: 100,
		OnTick: func(s Snapshot) {
			noisy := s.Tenants[0]
			if !noisy.Noisy || noisy.Tenant != NoisyTenant {
				t.Errorf("first tenant is %+v, want %s", noisy, NoisyTenant)
				cancel()
				return
			}
			if !noisy.Paused() {
				return
			}
			if first == nil {
				first = &mark{pausedAt: s.At, done: map[string]uint64{}}
				for _, f := range s.Tenants {
					first.done[f.Tenant] = f.Done
				}
				return
			}
			// Still paused, later: the quiet tenants must have moved on.
			if quietOK(s) {
				select {
				case proved <- s:
				default:
				}
				cancel()
			}
		},
	}
	var out syncBuffer
	start := time.Now()
	sum, err := Run(ctx, cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	t.Logf("demo ran %s, %d ticks", time.Since(start).Round(time.Millisecond), sum.Ticks)

	var s Snapshot
	select {
	case s = <-proved:
	default:
		t.Fatalf("the figures never showed quiet tenants progressing while %s was paused (first pause: %v)\n%s", NoisyTenant, first != nil, out.String())
	}

	noisy, ok := sum.Tenant(NoisyTenant)
	if !ok {
		t.Fatalf("summary has no %s: %+v", NoisyTenant, sum)
	}
	if noisy.Last.RateLimited == 0 || noisy.PausedTicks == 0 {
		t.Errorf("%s: %d 429s, paused at %d ticks; want both > 0", NoisyTenant, noisy.Last.RateLimited, noisy.PausedTicks)
	}
	if until := s.Tenants[0].PausedUntil; !until.After(first.pausedAt) {
		t.Errorf("%s paused until %s, want a time after it was first seen paused (%s)", NoisyTenant, until, first.pausedAt)
	}
	for _, ts := range sum.Tenants {
		if ts.PublishErrors != 0 {
			t.Errorf("%s: %d publish errors", ts.Last.Tenant, ts.PublishErrors)
		}
		if ts.Last.Dead != 0 {
			t.Errorf("%s: %d jobs dead-lettered, want none", ts.Last.Tenant, ts.Last.Dead)
		}
		if ts.Last.Noisy {
			continue
		}
		if ts.Last.RateLimited != 0 || ts.PausedTicks != 0 {
			t.Errorf("quiet tenant %s: %d 429s, paused at %d ticks; want none", ts.Last.Tenant, ts.Last.RateLimited, ts.PausedTicks)
		}
		if ts.Last.Done < 4 {
			t.Errorf("quiet tenant %s finished %d jobs, want progress", ts.Last.Tenant, ts.Last.Done)
		}
	}

	// The printed view carries the same story.
	text := out.String()
	for _, want := range []string{"org_noisy", "org_quiet_1", "org_quiet_2", "PAUSED until", "jobs/s", "stopped after"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{Tenants: 1},
		{Tenants: MaxTenants + 1},
		{Duration: -time.Second},
		{NoisyFactor: 0.5},
		{QuietLoad: 1.5},
		{Window: time.Millisecond},
		{NATSPort: 70000},
	} {
		if _, err := Run(t.Context(), c, &bytes.Buffer{}); err == nil {
			t.Errorf("Run(%+v) succeeded, want a config error", c)
		}
	}
}

func TestPlans(t *testing.T) {
	cfg := Config{Tenants: 4}.withDefaults()
	ps := cfg.plans("http://127.0.0.1:1")
	if len(ps) != 4 || ps[0].tenant.ID != NoisyTenant || !ps[0].noisy {
		t.Fatalf("plans = %+v", ps)
	}
	// 50 per 10 s is 300/min, the platform's documented quota.
	if ps[1].tenant.RatePerMinute != 300 || ps[0].tenant.RatePerMinute != 900 {
		t.Errorf("rates = %d (quiet), %d (noisy); want 300 and 900", ps[1].tenant.RatePerMinute, ps[0].tenant.RatePerMinute)
	}
	if ps[1].offered != 4 || ps[0].offered != 15 {
		t.Errorf("offered = %g (quiet), %g (noisy) jobs/s; want 4 and 15", ps[1].offered, ps[0].offered)
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if err := p.tenant.Validate(); err != nil {
			t.Errorf("tenant %s: %v", p.tenant.ID, err)
		}
		if seen[p.tenant.ClientID] || seen[p.tenant.ClientSecret.Reveal()] {
			t.Errorf("tenant %s shares a client id or secret", p.tenant.ID)
		}
		seen[p.tenant.ClientID], seen[p.tenant.ClientSecret.Reveal()] = true, true
	}
}
