package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
)

// condParked is the condlog condition of a lane parked on this replica.
const condParked = "tenant lane parked on this replica; not pulling"

// Parking is local to a replica: its credentials were rejected here, or its
// token endpoint cannot be reached from here. Other replicas may be fine, so
// a parked lane gets out of their way:
//
//   - it stops pulling (its iterator is drained), so it holds none of the
//     tenant's MaxAckPending slots;
//   - what it holds goes back at once (Nak without delay, recorded as a free
//     delivery), for a healthy replica to run now;
//   - its heartbeat lists the tenant as parked, so peers do not count it in
//     the tenant's org-scoped quota share and take the whole of it;
//   - it probes on its own backoff schedule with a token fetch
//     (platform.Client.CheckToken), not with jobs, and pulls again when the
//     probe succeeds (or at once when new credentials are loaded).
//
// When every replica is parked, nobody pulls: the jobs wait in the stream,
// none is lost and none uses up an attempt.

// parkAndStopPulling parks the lane after a job found its credentials
// rejected or its token endpoint down, and stops the pull: the pull loop
// waits in waitWhileParked. The parking lasts at least atLeast (a token
// endpoint's Retry-After). It returns the parking's end.
func (l *lane) parkAndStopPulling(state string, atLeast time.Duration) time.Time {
	until := l.gate.park(state, l.p.cfg.BackoffBase, l.p.cfg.BackoffMax, atLeast)
	l.drainPulls(false) // the pull loops hand back what is buffered
	return until
}

// parkedNowAt reports whether the lane is parked at now.
func (l *lane) parkedNowAt(now time.Time) bool {
	until, _ := l.gate.parkedAt(now)
	return !until.IsZero()
}

// wakeUp cuts a parked wait short (new credentials were loaded).
func (l *lane) wakeUp() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// waitWhileParked returns at once when the lane is not parked. Otherwise it
// marks the lane as not pulling (reported in heartbeats), waits out the
// parking, probes with a token fetch and parks again (longer) while the
// probe fails. It returns false when the lane stops meanwhile.
func (l *lane) waitWhileParked() bool {
	p := l.p
	if !l.parkedNowAt(p.cfg.Now()) {
		return true
	}
	l.parkedNow.Store(true)
	p.beatSoon()
	defer func() {
		l.parkedNow.Store(false)
		p.beatSoon()
	}()
	for {
		until, _ := l.gate.parkedAt(p.cfg.Now())
		if !until.IsZero() {
			t := time.NewTimer(until.Sub(p.cfg.Now()))
			select {
			case <-t.C:
			case <-l.wake:
				t.Stop()
			case <-l.pullCtx.Done():
				t.Stop()
				return false
			}
			continue
		}
		err := l.probe()
		if l.stopping.Load() {
			return false
		}
		var tokenErr *platform.TokenError
		switch {
		case err == nil:
			l.cond.Clear(l.id, condParked)
			p.log.Info("tenant lane probe succeeded; pulling again", "tenant", l.id)
			return true
		case errors.As(err, &tokenErr):
			state := dispatcher.LaneTokenUnavailable
			if tokenErr.Rejected {
				state = dispatcher.LaneCredentialsRejected
			}
			until := l.gate.park(state, p.cfg.BackoffBase, p.cfg.BackoffMax, tokenErr.RetryAfter)
			l.setError(state + ": " + err.Error())
			l.cond.Report(slog.LevelWarn, l.id, condParked, "state", state, "until", until.UTC().Format(time.RFC3339), "error", err.Error())
		default:
			// Not the platform's answer (the probe's own timeout): try
			// again after the current level's wait.
			until := l.gate.park(dispatcher.LaneTokenUnavailable, p.cfg.BackoffBase, p.cfg.BackoffMax, 0)
			l.cond.Report(slog.LevelWarn, l.id, condParked, "state", dispatcher.LaneTokenUnavailable, "until", until.UTC().Format(time.RFC3339), "error", err.Error())
		}
	}
}

// probe fetches a token (or finds the cached one still good).
func (l *lane) probe() error {
	ctx, cancel := context.WithTimeout(l.pullCtx, statusTimeout)
	defer cancel()
	return l.currentClient().CheckToken(ctx)
}
