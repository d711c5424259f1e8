package worker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// blockedError is what the gate returns when the lane may not call the
// platform now: the tenant is paused (a 429 here or on another replica, or an
// operator), or the lane is parked because its credentials were rejected or
// its token endpoint is down. The job is handed back until Until, without
// using up an attempt.
type blockedError struct {
	Until time.Time
	State string // dispatcher.LanePaused, LaneCredentialsRejected or LaneTokenUnavailable
}

func (e *blockedError) Error() string {
	return fmt.Sprintf("lane %s until %s", e.State, e.Until.UTC().Format(time.RFC3339))
}

// gate decides whether a lane may send a request now. Every platform request
// passes through it (platform.Config.BeforeRequest): it refuses while the
// tenant is paused or the lane parked, waits on the lane's rate limiter, and
// checks once more, because a pause may have begun while it waited.
//
// Pauses merge "later wins": a 429 that asks for less than the pause already
// known does not shorten it. Only a resume (the server's advisory that the
// pause ended, or an operator's Resume) clears it early.
type gate struct {
	now         func() time.Time
	limiter     *rate.Limiter
	rateWaiting atomic.Int64 // requests waiting on the limiter now

	mu          sync.Mutex
	pausedUntil time.Time
	pauseSetAt  time.Time // wall clock of the last local change; orders stale advisories
	pauseEnded  bool      // the pause's end was reported (resume)
	gentle      bool      // empty the limiter on the first pass after the pause
	parkedUntil time.Time
	parkState   string
	parkLevel   int
	limitSet    chan struct{} // closed (and replaced) when the limit changes
	resumeAfter time.Duration // this replica's turn after a pause ends

	// The classes' turns (see wait).
	waiting [classCount]int     // requests of each class waiting for a token
	vtime   [classCount]float64 // each class's virtual time: 1/weight per token taken
	vnow    float64             // the virtual time of the last token taken
	turn    chan struct{}       // closed (and replaced) when a token is taken or the waiting classes change
}

// classCount is how many priority classes there are.
const classCount = 3

var classWeights = func() (w [classCount]int) {
	for i, p := range dispatcher.Priorities() {
		w[i] = dispatcher.PriorityWeight(p)
	}
	return w
}()

type classKey struct{}

// withClass marks ctx as a request of the class with index i (in
// dispatcher.Priorities order); the gate reads it. Unmarked requests are
// normal.
func withClass(ctx context.Context, i int) context.Context {
	return context.WithValue(ctx, classKey{}, i)
}

func classOf(ctx context.Context) int {
	if i, ok := ctx.Value(classKey{}).(int); ok && i >= 0 && i < classCount {
		return i
	}
	return dispatcher.PriorityNormal.Index()
}

func newGate(now func() time.Time, limit rate.Limit, burst int) *gate {
	return &gate{now: now, limiter: rate.NewLimiter(limit, burst), limitSet: make(chan struct{}), turn: make(chan struct{})}
}

// before is the lane's platform.Config.BeforeRequest.
func (g *gate) before(ctx context.Context) error {
	if err := g.pass(ctx); err != nil {
		return err
	}
	g.rateWaiting.Add(1) // LaneReport.RateWaiting
	err := g.wait(ctx)
	g.rateWaiting.Add(-1)
	if err != nil {
		return fmt.Errorf("rate limiter: %w", err)
	}
	return g.pass(ctx)
}

// pass returns nil once the lane may send (waiting out this replica's turn
// after a pause), or a *blockedError while it may not.
func (g *gate) pass(ctx context.Context) error {
	for {
		turn, err := g.check()
		if err != nil || turn == 0 {
			return err
		}
		t := time.NewTimer(turn)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
}

// setResumeOffset sets how long after a pause's end this replica waits
// before its first request (its turn among the replicas).
func (g *gate) setResumeOffset(d time.Duration) {
	g.mu.Lock()
	g.resumeAfter = d
	g.mu.Unlock()
}

// wait takes one token from the limiter. Unlike rate.Limiter.Wait it holds
// no reservation while it waits: it takes a token only when one is there and
// otherwise sleeps until the next is due, or until the limit changes, and
// looks again. A reservation would keep the pace in force when it was made,
// so after a change (rate: auto re-pacing within a window, an org quota
// re-sized as replicas come and go) requests already waiting would go at the
// old pace — too slow, or, when the window's budget has just run out, too
// fast; and cancelling reservations to re-plan loses tokens when several
// requests wait.
//
// The classes of the tenant take turns by stride scheduling: each class has
// a virtual time that advances by 1/weight (dispatcher.PriorityWeight:
// urgent 7, normal 2, bulk 1) with each token it takes, and the token goes
// to the waiting class whose virtual time is least (ties: the higher
// class). A class that starts waiting again starts no earlier than the
// virtual time of the last token taken, so it banks nothing while idle:
// an urgent or normal request arriving behind any number of waiting bulk
// ones takes the next token, and while several classes keep waiting they
// share the tokens by weight — bulk is slowed, never starved.
func (g *gate) wait(ctx context.Context) error {
	c := classOf(ctx)
	g.mu.Lock()
	if g.waiting[c] == 0 {
		g.vtime[c] = max(g.vtime[c], g.vnow)
	}
	g.waiting[c]++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting[c]--
		g.turnChangedLocked()
		g.mu.Unlock()
	}()
	for {
		// The class is chosen when a token is there, not before: an urgent
		// request arriving while bulk ones wait for the next token takes it.
		g.mu.Lock()
		changed, turn := g.limitSet, g.turn
		tokens := g.limiter.Tokens()
		need := g.needLocked(c)
		if tokens >= need && g.pickLocked() == c && g.limiter.Allow() {
			g.vnow = g.vtime[c]
			g.vtime[c] += 1 / float64(classWeights[c])
			g.turnChangedLocked()
			g.mu.Unlock()
			return nil
		}
		g.mu.Unlock()
		var due *time.Timer
		wake := (<-chan time.Time)(nil) // a zero limit waits for a change; a token there for the chosen class to take it
		if lim := g.limiter.Limit(); tokens < need && lim > 0 {
			d := time.Duration((need - tokens) / float64(lim) * float64(time.Second))
			due = time.NewTimer(max(d, time.Millisecond))
			wake = due.C
		}
		select {
		case <-wake:
		case <-changed:
		case <-turn:
		case <-ctx.Done():
		}
		if due != nil {
			due.Stop()
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
}

// needLocked is how many tokens the limiter must hold for a request of
// class c to take one: 1, but 2 for bulk waiting alone when the tenant's
// burst allows 2. Bulk alone then leaves one token banked, so that a live
// (urgent or normal) job arriving during a backlog or a replay goes at once
// instead of waiting for the next token, at no cost to bulk's rate; while
// other classes wait, the classes' shares decide.
func (g *gate) needLocked(c int) float64 {
	if c != dispatcher.PriorityBulk.Index() || g.limiter.Burst() < 2 {
		return 1
	}
	for i := range classCount {
		if i != c && g.waiting[i] > 0 {
			return 1
		}
	}
	return 2
}

// pickLocked returns the class whose request takes the next token: the
// waiting class with the least virtual time, the higher class on a tie; -1
// when nothing waits.
func (g *gate) pickLocked() int {
	best := -1
	for i := range classCount {
		if g.waiting[i] > 0 && (best < 0 || g.vtime[i] < g.vtime[best]) {
			best = i
		}
	}
	return best
}

// turnChangedLocked wakes the requests waiting for their class's turn.
func (g *gate) turnChangedLocked() {
	close(g.turn)
	g.turn = make(chan struct{})
}

// setLimit changes the limiter's rate and has waiting requests plan anew.
func (g *gate) setLimit(l rate.Limit) {
	if g.limiter.Limit() == l {
		return
	}
	g.limiter.SetLimit(l)
	g.mu.Lock()
	close(g.limitSet)
	g.limitSet = make(chan struct{})
	g.mu.Unlock()
}

// check returns a *blockedError while the lane may not send, or how long to
// wait for this replica's turn right after a pause ended. The first check
// past that turn empties the limiter (gentle restart).
func (g *gate) check() (time.Duration, error) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.pausedUntil) {
		return 0, &blockedError{Until: g.pausedUntil, State: dispatcher.LanePaused}
	}
	if now.Before(g.parkedUntil) {
		return 0, &blockedError{Until: g.parkedUntil, State: g.parkState}
	}
	if g.gentle {
		if turn := g.pausedUntil.Add(g.resumeAfter); !g.pausedUntil.IsZero() && now.Before(turn) {
			return turn.Sub(now), nil
		}
		g.gentle = false
		emptyLimiter(g.limiter, time.Now())
	}
	return 0, nil
}

// emptyLimiter leaves at most one token in l: the first request after a pause
// goes at once, the next one 1/rate later, however much burst the limiter
// saved up while the lane stood still.
func emptyLimiter(l *rate.Limiter, at time.Time) {
	if extra := int(l.TokensAt(at)) - 1; extra > 0 {
		l.ReserveN(at, extra)
	}
}

// blockedUntil reports until when the lane may not send (zero: it may) and why.
func (g *gate) blockedUntil(now time.Time) (time.Time, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, state := time.Time{}, ""
	if now.Before(g.pausedUntil) {
		until, state = g.pausedUntil, dispatcher.LanePaused
	}
	if now.Before(g.parkedUntil) && g.parkedUntil.After(until) {
		until, state = g.parkedUntil, g.parkState
	}
	return until, state
}

// pause extends the pause to until unless a pause at least as long is
// already known (within slack). It reports whether the pause changed.
func (g *gate) pause(until time.Time, slack time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !until.After(g.pausedUntil.Add(slack)) {
		return false
	}
	g.pausedUntil = until
	g.pauseSetAt = time.Now()
	g.pauseEnded = false
	g.gentle = true
	return true
}

// resume ends the pause at once, unless the pause was set locally after
// `stamp` (the resume is then older than the pause it would end). It reports
// whether it cleared a pause (in force, or run out but not yet cleared: the
// server's advisory when a pause runs out reports its end once).
func (g *gate) resume(stamp time.Time) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if !stamp.IsZero() && g.pauseSetAt.After(stamp) {
		return false
	}
	if g.pauseEnded || g.pausedUntil.IsZero() {
		return false
	}
	g.pauseEnded = true
	// An early end (an operator's resume) counts from now; a pause that ran
	// its course keeps its deadline, from which the replicas take turns.
	if now.Before(g.pausedUntil) {
		g.pausedUntil = now
	}
	return true
}

// paused returns the pause deadline, zero when the tenant is not paused.
func (g *gate) paused() time.Time {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.pausedUntil) {
		return g.pausedUntil
	}
	return time.Time{}
}

// park stops the lane for an exponentially growing time after its
// credentials were rejected or its token endpoint failed; it returns the
// deadline.
func (g *gate) park(state string, base, ceiling, atLeast time.Duration) time.Time {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.parkedUntil) && g.parkState == state {
		// Concurrent jobs failing for the same reason park the lane once.
		if until := now.Add(atLeast); until.After(g.parkedUntil) {
			g.parkedUntil = until
		}
		return g.parkedUntil
	}
	g.parkLevel++
	g.parkState = state
	g.parkedUntil = now.Add(max(backoffCeiling(g.parkLevel, base, ceiling), atLeast))
	return g.parkedUntil
}

// unpark clears the parking after a request got through.
func (g *gate) unpark() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.parkLevel, g.parkState, g.parkedUntil = 0, "", time.Time{}
}

// parkedAt reports until when the lane is parked at now (zero: it is not)
// and why. Unlike parked, it ignores a parking that has run out.
func (g *gate) parkedAt(now time.Time) (time.Time, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.parkedUntil) {
		return g.parkedUntil, g.parkState
	}
	return time.Time{}, ""
}

// parked returns the parking state ("" when the lane is not parked or the
// parking expired without a new failure being seen yet).
func (g *gate) parked() (string, time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.parkLevel == 0 {
		return "", time.Time{}
	}
	return g.parkState, g.parkedUntil
}
