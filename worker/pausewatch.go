package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// pauseAdvisoryType is the type of the server's consumer pause advisory
// (nats-server's JSConsumerPauseAdvisoryType).
const pauseAdvisoryType = "io.nats.jetstream.advisory.v1.consumer_pause"

// pauseAdvisory is the JSON of nats-server's JSConsumerPauseAdvisory
// (server/jetstream_events.go, v2.15). The server sends one when a consumer
// is paused or resumed through the API, and one when a pause runs out.
type pauseAdvisory struct {
	Type       string    `json:"type"`
	Time       time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	Paused     bool      `json:"paused"`
	PauseUntil time.Time `json:"pause_until,omitempty"`
}

// watchPauses keeps every lane's pause knowledge in step with the server's:
// a pause set by another replica (its 429) or by an operator stops this
// replica's lane too, and messages it already holds are handed back. After a
// reconnect (advisories may have been missed) every lane re-reads its
// consumer. It returns the function that stops watching.
func (p *Pool) watchPauses() (stop func(), err error) {
	sub, err := p.cfg.Conn.Subscribe(p.cfg.Names.PauseAdvisorySubject(), func(m *nats.Msg) {
		var a pauseAdvisory
		if err := json.Unmarshal(m.Data, &a); err != nil || a.Type != pauseAdvisoryType {
			p.log.Debug("ignoring pause advisory", "subject", m.Subject, "error", err)
			return
		}
		p.applyPauseAdvisory(a)
	})
	if err != nil {
		return nil, fmt.Errorf("worker: subscribe to pause advisories: %w", err)
	}
	connected := p.cfg.Conn.StatusChanged(nats.CONNECTED)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-connected:
				p.resyncPauses(done)
			case <-done:
				return
			}
		}
	}()
	return func() {
		_ = sub.Unsubscribe()
		close(done)
		<-exited
		p.cfg.Conn.RemoveStatusListener(connected)
	}, nil
}

func (p *Pool) applyPauseAdvisory(a pauseAdvisory) {
	tenant, ok := p.cfg.Names.TenantOfConsumer(a.Consumer)
	if !ok || a.Stream != p.cfg.Names.JobsStream(tenant) {
		return
	}
	l := p.lane(tenant)
	if l == nil {
		return
	}
	if a.Paused && !a.PauseUntil.IsZero() {
		l.learnPause(a.PauseUntil, "pause advisory")
		return
	}
	// Resumed (by an operator), or the pause ran out. An advisory older than
	// a pause this lane set itself does not end that pause.
	if l.gate.resume(a.Time) {
		p.cfg.Hooks.PauseChanged(tenant, time.Time{})
		p.log.Info("tenant resumed", "tenant", tenant)
	}
}

// resyncPauses re-reads every lane's consumer after a reconnect. A lane
// whose consumer is gone (a restarted nats-server forgot a memory-storage
// one) pulls anew, which binds — and with Config.Streams creates — it: its
// pull request would otherwise go on asking a consumer that is not there.
// A server that has just restarted may not serve JetStream yet: a lane
// whose consumer could not be read is tried again, for up to a minute.
func (p *Pool) resyncPauses(done <-chan struct{}) {
	lanes := p.laneList()
	wait := 100 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	for len(lanes) > 0 {
		var again []*lane
		var lastErr error
		for _, l := range lanes {
			if l.stopping.Load() {
				continue
			}
			asked := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
			cons, err := p.cfg.JS.Consumer(ctx, p.cfg.Names.JobsStream(l.id), p.cfg.Names.Consumer(l.id))
			cancel()
			switch {
			case errors.Is(err, jetstream.ErrConsumerNotFound):
				l.repull()
			case err != nil:
				again, lastErr = append(again, l), err
			default:
				l.syncPause(cons.CachedInfo(), asked)
			}
		}
		lanes = again
		if len(lanes) == 0 {
			return
		}
		if time.Now().After(deadline) || p.cfg.Conn.IsClosed() {
			p.log.Warn("re-read consumers after reconnect", "lanes", len(lanes), "error", lastErr)
			return
		}
		select {
		case <-time.After(wait):
		case <-done:
			return
		}
		wait = min(2*wait, 2*time.Second)
	}
}
