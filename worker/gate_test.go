package worker

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

func TestGatePauseLaterWins(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	g := newGate(func() time.Time { return now }, rate.Inf, 1)

	if !g.pause(now.Add(10*time.Second), 0) {
		t.Fatal("first pause not taken")
	}
	if g.pause(now.Add(5*time.Second), 0) {
		t.Error("a shorter pause shortened the known one")
	}
	if g.pause(now.Add(10*time.Second+100*time.Millisecond), 250*time.Millisecond) {
		t.Error("a pause within the slack counted as a change")
	}
	if got := g.paused(); !got.Equal(now.Add(10 * time.Second)) {
		t.Errorf("paused until %s", got)
	}
	if !g.pause(now.Add(20*time.Second), 0) {
		t.Error("a longer pause was not taken")
	}
	until, state := g.blockedUntil(now)
	if !until.Equal(now.Add(20*time.Second)) || state != dispatcher.LanePaused {
		t.Errorf("blocked until %s (%s)", until, state)
	}
	var be *blockedError
	if _, err := g.check(); !errors.As(err, &be) || !be.Until.Equal(now.Add(20*time.Second)) {
		t.Errorf("check during the pause: %v", err)
	}

	// A resume older than the local pause does not end it; a newer one does.
	if g.resume(g.pauseSetAt.Add(-time.Second)) {
		t.Error("a stale resume ended the pause")
	}
	if !g.resume(g.pauseSetAt.Add(time.Second)) {
		t.Error("a resume did not end the pause")
	}
	if _, err := g.check(); err != nil {
		t.Errorf("check after resume: %v", err)
	}

	// The pause ends by itself at its deadline.
	g.pause(now.Add(time.Second), 0)
	now = now.Add(time.Second)
	if _, err := g.check(); err != nil {
		t.Errorf("check at the deadline: %v", err)
	}
}

func TestGateParkBacksOffExponentially(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	g := newGate(func() time.Time { return now }, rate.Inf, 1)
	base, maxd := time.Second, 4*time.Second
	for i, want := range []time.Duration{1, 2, 4, 4} {
		until := g.park(dispatcher.LaneCredentialsRejected, base, maxd, 0)
		if got := until.Sub(now); got != want*time.Second {
			t.Errorf("park %d: %s, want %s", i+1, got, want*time.Second)
		}
		// A second job failing meanwhile does not extend it.
		if again := g.park(dispatcher.LaneCredentialsRejected, base, maxd, 0); !again.Equal(until) {
			t.Errorf("park %d repeated: %s, want %s", i+1, again, until)
		}
		var be *blockedError
		if _, err := g.check(); !errors.As(err, &be) || be.State != dispatcher.LaneCredentialsRejected {
			t.Errorf("check while parked: %v", err)
		}
		now = until
	}
	if state, _ := g.parked(); state != dispatcher.LaneCredentialsRejected {
		t.Errorf("state after the parking ran out, before a success: %q", state)
	}
	g.unpark()
	if state, _ := g.parked(); state != "" {
		t.Errorf("state after unpark: %q", state)
	}
	if until := g.park(dispatcher.LaneTokenUnavailable, base, maxd, 0); until.Sub(now) != base {
		t.Errorf("park after unpark: %s, want the base again", until.Sub(now))
	}
}

// After a pause the lane restarts gently: whatever burst the limiter saved
// while standing still, the first request goes at the pause's end and the
// next one 1/rate later.
func TestGateRestartsGentlyAfterPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(time.Now, rate.Limit(10), 5) // 10/s, burst 5
		ctx := context.Background()
		start := time.Now()
		if !g.pause(start.Add(3*time.Second), 0) {
			t.Fatal("pause not taken")
		}
		var be *blockedError
		if err := g.before(ctx); !errors.As(err, &be) {
			t.Fatalf("before during the pause: %v", err)
		}
		time.Sleep(3 * time.Second) // fake time: the pause runs out
		for i, want := range []time.Duration{0, 100 * time.Millisecond, 100 * time.Millisecond} {
			t0 := time.Now()
			if err := g.before(ctx); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if got := time.Since(t0); got != want {
				t.Errorf("request %d after the pause waited %s, want %s", i, got, want)
			}
		}
	})
}

// A pause that begins while a request waits on the limiter stops it.
func TestGateRechecksAfterWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(time.Now, rate.Limit(1), 1)
		ctx := context.Background()
		if err := g.before(ctx); err != nil { // takes the only token
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- g.before(ctx) }()
		synctest.Wait() // the request waits for the next token (1s)
		g.pause(time.Now().Add(time.Minute), 0)
		var be *blockedError
		if err := <-errc; !errors.As(err, &be) {
			t.Errorf("request that waited into a pause: %v", err)
		}
	})
}

// A request waiting on the limiter plans anew when the limit changes: it goes
// at the new pace, faster or slower, not at the pace of its reservation.
func TestGateWaitFollowsLimitChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(time.Now, rate.Limit(0.1), 1) // one per 10 s
		ctx := context.Background()
		if err := g.before(ctx); err != nil { // takes the only token
			t.Fatal(err)
		}
		start := time.Now()
		done := make(chan time.Duration, 1)
		go func() {
			if err := g.before(ctx); err != nil {
				t.Error(err)
			}
			done <- time.Since(start)
		}()
		synctest.Wait() // waiting for the token due in 10 s
		g.setLimit(rate.Limit(10))
		if got := <-done; got > 200*time.Millisecond {
			t.Errorf("after the limit rose to 10/s the waiting request went after %s, want ≤ 100ms", got)
		}

		// Slower: a request that reserved at 10/s waits for the new 0.5/s.
		start = time.Now()
		go func() {
			if err := g.before(ctx); err != nil {
				t.Error(err)
			}
			done <- time.Since(start)
		}()
		synctest.Wait()
		g.setLimit(rate.Limit(0.5))
		if got := <-done; got < time.Second {
			t.Errorf("after the limit fell to 0.5/s the waiting request went after %s, want ≥ 1s", got)
		}
	})
}

// A waiting request gives up with the context's cause.
func TestGateWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(time.Now, rate.Limit(0.1), 1)
		if err := g.before(context.Background()); err != nil {
			t.Fatal(err)
		}
		cause := errors.New("shutting down")
		ctx, cancel := context.WithCancelCause(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- g.before(ctx) }()
		synctest.Wait()
		cancel(cause)
		if err := <-errc; !errors.Is(err, cause) {
			t.Errorf("before = %v, want the cause %v", err, cause)
		}
	})
}

// After a pause each replica takes its turn: the first request goes at the
// pause's end plus the replica's resume offset, not before.
func TestGateResumesAtItsTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(time.Now, rate.Limit(10), 1)
		g.setResumeOffset(200 * time.Millisecond)
		start := time.Now()
		g.pause(start.Add(3*time.Second), 0)
		time.Sleep(3 * time.Second) // fake time: the pause runs out
		if err := g.before(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second+200*time.Millisecond {
			t.Errorf("first request after the pause at +%s, want +3.2s (the end plus this replica's turn)", got)
		}
		// Later requests go at the limiter's pace, with no further wait.
		t0 := time.Now()
		if err := g.before(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(t0); got != 100*time.Millisecond {
			t.Errorf("next request after %s, want 100ms", got)
		}
	})
}

func TestReplicaRank(t *testing.T) {
	now := time.Now()
	const interval = 2 * time.Second
	seen := map[string]time.Time{"a": now, "c": now, "self": now, "z": now.Add(-time.Minute)}
	if live, rank := replicaRank("b", seen, now, interval); live != 4 || rank != 1 {
		t.Errorf("b among a, c, self (z gone): live %d rank %d, want 4 and 1", live, rank)
	}
	if live, rank := replicaRank("b", nil, now, interval); live != 1 || rank != 0 {
		t.Errorf("alone: live %d rank %d, want 1 and 0", live, rank)
	}
}

// The server's advisory that a pause ran its course does not cancel the
// replica's turn; an early (operator) resume starts the turns from now.
func TestGateTurnSurvivesResumeAdvisory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(time.Now, rate.Limit(10), 1)
		g.setResumeOffset(200 * time.Millisecond)
		start := time.Now()
		g.pause(start.Add(3*time.Second), 0)
		time.Sleep(3 * time.Second) // fake time: the pause runs out
		if !g.resume(time.Now()) {
			t.Fatal("the advisory of the pause's end was not reported")
		}
		if g.resume(time.Now()) {
			t.Error("the pause's end was reported twice")
		}
		if err := g.before(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second+200*time.Millisecond {
			t.Errorf("first request at +%s, want +3.2s", got)
		}

		// Early resume by an operator, 1 s into a 60 s pause.
		start = time.Now()
		g.pause(start.Add(time.Minute), 0)
		time.Sleep(time.Second)
		if !g.resume(time.Now()) {
			t.Fatal("early resume not reported")
		}
		if err := g.before(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != time.Second+200*time.Millisecond {
			t.Errorf("first request after an early resume at +%s, want +1.2s", got)
		}
	})
}
