package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/orgdispatch/orgdispatch/platform"
)

// Where a lane's pace comes from (LaneReport.RateSource).
const (
	RateSourceConfigured = "configured"     // rate_per_minute (rate: fixed, or auto before it learnt anything)
	RateSourceLimitsAPI  = "limits API"     // GET /api/v2/organizations/limits/namespaces/platform.api
	RateSource429        = "429 limit"      // a 429 body's limit object
	RateSourceHeaders    = "legacy headers" // inin-ratelimit-* (removed from Genesys Cloud in 2021)
)

// Defaults of rate: auto's limits API use.
const (
	// DefaultLimitsRefresh is how often a rate: auto lane reads the org's
	// limits again while it has work.
	DefaultLimitsRefresh = 15 * time.Minute
	// limitsRetry is how soon a failed limits read is tried again.
	limitsRetry = time.Minute
)

// autoHeadroom is the share of a learnt quota rate: auto paces at. A 429
// costs the tenant a pause of up to a whole window, and pacing at exactly the
// quota leaves no room for the lane's own limits reads or for a window that
// does not start where the lane thinks; 2 % below it costs 2 % of the quota
// and keeps steady state free of 429s.
const autoHeadroom = 0.98

// pacedLimit is the platform limit rate: auto paces by: the per-token request
// limit of client-credentials tokens.
var pacedLimit = platform.Limit{Key: platform.LimitKeyTokenRate, Namespace: platform.NamespacePlatformAPI}

// isPacedLimit reports whether l names the limit the lane paces by.
func isPacedLimit(l *platform.Limit) bool {
	return l != nil && l.Key != "" && l.Key == pacedLimit.Key && (l.Namespace == "" || l.Namespace == pacedLimit.Namespace)
}

// quotaLearner is rate: auto's knowledge of a tenant's quota, learnt from
// what today's platform gives: the organization limits API (read when the
// lane starts and every LimitsRefresh while it has work) and the limit
// object of each 429's body. Both name the limit and its value per minute;
// only the paced limit (client.credentials.token.rate.per.minute) sets the
// pace, so a 429 of an endpoint family's own, lower limit pauses the tenant
// for its Retry-After but never lowers its pace for good.
type quotaLearner struct {
	mu        sync.Mutex
	perSec    float64 // learnt quota in requests/s; 0: nothing learnt yet
	source    string
	fetchedAt time.Time // last limits read (successful or not)
	nextFetch time.Time
	fetching  bool
	warned    bool // the limits API's failure was logged
}

// learn records a limit value (requests per minute) from source; it reports
// whether the pace changed.
func (q *quotaLearner) learn(perMinute int, source string) bool {
	if perMinute <= 0 {
		return false
	}
	perSec := float64(perMinute) / 60 * autoHeadroom
	q.mu.Lock()
	defer q.mu.Unlock()
	changed := q.perSec != perSec
	q.perSec, q.source = perSec, source
	return changed
}

// learnt returns the pace learnt from the quota (0 when none; autoHeadroom
// below the quota) and its source.
func (q *quotaLearner) learnt() (float64, string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.perSec, q.source
}

// forget drops what was learnt (the tenant was switched to rate: fixed).
func (q *quotaLearner) forget() {
	q.mu.Lock()
	q.perSec, q.source, q.nextFetch = 0, "", time.Time{}
	q.mu.Unlock()
}

// startFetch reports whether a limits read is due at now, and if so marks
// one as running.
func (q *quotaLearner) startFetch(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fetching || now.Before(q.nextFetch) {
		return false
	}
	q.fetching = true
	return true
}

// fetched ends a limits read at now; the next one is due after next.
func (q *quotaLearner) fetched(now time.Time, next time.Duration) {
	q.mu.Lock()
	q.fetching, q.fetchedAt, q.nextFetch = false, now, now.Add(next)
	q.mu.Unlock()
}

// refreshLimits reads the org's limits in the background when a read is due
// (rate: auto only). The read is an API request like a job's: it waits for
// the lane's limiter and pause, counts against the quota, and a 429 to it
// pauses the tenant like any other.
func (l *lane) refreshLimits() {
	l.mu.Lock()
	auto := l.tenant.RateAuto
	l.mu.Unlock()
	if !auto || l.stopping.Load() || !l.quota.startFetch(l.p.cfg.Now()) {
		return
	}
	go func() {
		client := l.currentClient()
		limits, err := client.Limits(l.jobsCtx, platform.NamespacePlatformAPI)
		next := l.p.cfg.LimitsRefresh
		defer func() { l.quota.fetched(l.p.cfg.Now(), next) }()
		if err != nil {
			if context.Cause(l.jobsCtx) != nil {
				next = 0
				return
			}
			if e, ok := errors.AsType[*platform.RateLimitError](err); ok {
				l.rateLimited429(e, "")
				next = limitsRetry
				return
			}
			if _, permanent := errors.AsType[*platform.PermanentError](err); !permanent {
				next = limitsRetry // a failing or unreachable platform, a token problem: soon again
			}
			l.quota.mu.Lock()
			first := !l.quota.warned
			l.quota.warned = true
			l.quota.mu.Unlock()
			if first {
				l.p.log.Warn("rate: auto cannot read the org's limits; it learns from 429 bodies only until they can be read",
					"tenant", l.id, "error", err, "correlation_id", platform.CorrelationID(err), "retry_in", next)
			}
			return
		}
		l.quota.mu.Lock()
		l.quota.warned = false
		l.quota.mu.Unlock()
		for _, lim := range limits {
			if isPacedLimit(&lim) {
				if l.quota.learn(lim.Value, RateSourceLimitsAPI) {
					l.p.log.Info("rate: auto learnt the quota", "tenant", l.id, "source", RateSourceLimitsAPI, "limit", lim.Key, "per_minute", lim.Value)
				}
				l.applyRate()
				return
			}
		}
		l.p.log.Warn("rate: auto: the org's limits do not list the paced limit; keeping the current pace", "tenant", l.id, "limit", pacedLimit.Key)
	}()
}

// minAutoLeft is the least time to the window's end auto-rate plans with, so
// that the last few requests of a window go out quickly, not all at once.
const minAutoLeft = 50 * time.Millisecond

// autoPacer learns a tenant's pace from the legacy rate-limit headers
// (inin-ratelimit-allowed/-count/-reset). Genesys Cloud removed them from
// every response in June 2021; they are used only when a platform still
// sends them (the simulator's legacy mode, other platforms). Each answer says
// how many requests the window allows, how many it has counted and how long
// until it resets. Spending what is left evenly over the rest of the window,
//
//	rate = (allowed − count − others in flight) / time to the window's end,
//
// cannot run out before the window resets, so steady state sees no 429: early
// in a window it is ≈ allowed/window; when someone else eats into the budget
// the remaining shrinks and the pace drops with it; once the budget is spent,
// the next request waits for the window's end. The lane's other requests on
// the wire (sent, not yet answered) may not be counted by the platform yet,
// so they are set aside; jobs merely waiting for the limiter are not.
//
// The reset header counts whole seconds (rounded up, as the simulator does;
// the platform never documented it), so one answer only places the window's
// end in (now+reset−1s, now+reset]. The pacer intersects the intervals of
// successive answers, which pins the end down to milliseconds within a few
// requests. A count that falls, or an interval that no longer overlaps,
// starts a new window.
type autoPacer struct {
	mu        sync.Mutex
	lo, hi    time.Time // the window ends in (lo, hi]; zero: unknown
	lastCount int
}

// observe takes one answer's headers, received at now, while others of the
// lane's requests are on the wire, and returns the pace in requests per
// second. ok is false when the answer carried no usable headers
// (the pace then stays as it was).
func (a *autoPacer) observe(now time.Time, l platform.RateLimit, others int) (perSec float64, ok bool) {
	if !l.Present || l.Allowed <= 0 {
		return 0, false
	}
	lo, hi := now.Add(l.Reset-time.Second), now.Add(l.Reset)
	if l.Reset < time.Second {
		lo = now // "within the second"
	}
	a.mu.Lock()
	switch {
	case a.hi.IsZero() || l.Count < a.lastCount || !lo.Before(a.hi) || !a.lo.Before(hi):
		a.lo, a.hi = lo, hi // a new window, or the first answer
	default:
		a.lo, a.hi = later(a.lo, lo), earlier(a.hi, hi)
	}
	a.lastCount = l.Count
	lo, hi = a.lo, a.hi
	a.mu.Unlock()

	remaining := l.Allowed - l.Count - max(0, others)
	if remaining <= 0 {
		// Spent: the next request once the window has surely ended.
		return 1 / max(hi.Sub(now), minAutoLeft).Seconds(), true
	}
	left := max(lo.Add(hi.Sub(lo)/2).Sub(now), minAutoLeft)
	return float64(remaining) / left.Seconds(), true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
