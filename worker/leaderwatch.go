package worker

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

// leaderAdvisoryType is the type of the server's consumer leader-elected
// advisory (nats-server's JSConsumerLeaderElectedAdvisoryType).
const leaderAdvisoryType = "io.nats.jetstream.advisory.v1.consumer_leader_elected"

// leaderAdvisory is the part of nats-server's JSConsumerLeaderElectedAdvisory
// (server/jetstream_events.go, v2.15) a replica needs.
type leaderAdvisory struct {
	Type     string `json:"type"`
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Leader   string `json:"leader"`
}

// watchLeaders restarts a lane's pull as soon as its consumer has a new
// leader in a cluster. A pull request lives at the consumer's leader: when
// that node dies, the request dies with it, and the client would only notice
// when the pull's idle heartbeats stop coming (twice the heartbeat interval,
// 30 s by nats.go's default) — the tenant would stall that long. The
// advisory comes the moment the new leader is elected. It returns the
// function that stops watching.
func (p *Pool) watchLeaders() (stop func(), err error) {
	const subject = "$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.*.*"
	sub, err := p.cfg.Conn.Subscribe(subject, func(m *nats.Msg) {
		var a leaderAdvisory
		if err := json.Unmarshal(m.Data, &a); err != nil || a.Type != leaderAdvisoryType {
			return
		}
		tenant, _, ok := p.cfg.Names.TenantOfClassConsumer(a.Consumer)
		if !ok || a.Stream != p.cfg.Names.JobsStream(tenant) {
			return
		}
		if l := p.lane(tenant); l != nil {
			p.log.Debug("consumer has a new leader; pulling anew", "tenant", tenant, "leader", a.Leader)
			l.repull()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("worker: subscribe to consumer leader advisories: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// repull ends the lane's current pull (its buffered messages are still handed
// out) so that the pull loop binds the consumer and pulls anew at once.
func (l *lane) repull() { l.drainPulls(true) }

// watchCreated wakes the lane's pull of a class whose consumer was just
// created (by a Publisher before the class's first job, or by a replica
// that found its jobs) — the server's consumer-created advisory.
func (p *Pool) watchCreated() (stop func(), err error) {
	const subject = "$JS.EVENT.ADVISORY.CONSUMER.CREATED.*.*"
	sub, err := p.cfg.Conn.Subscribe(subject, func(m *nats.Msg) {
		tokens := strings.Split(m.Subject, ".")
		if len(tokens) != 7 {
			return
		}
		stream, consumer := tokens[5], tokens[6]
		tenant, class, ok := p.cfg.Names.TenantOfClassConsumer(consumer)
		if !ok || stream != p.cfg.Names.JobsStream(tenant) {
			return
		}
		if l := p.lane(tenant); l != nil {
			l.pullers[class.Index()].wakeUp()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("worker: subscribe to consumer created advisories: %w", err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}
