package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// strayInterval is how often a replica looks for strays.
const strayInterval = 5 * time.Second

// strayBatch bounds the strays one look dead-letters per subject.
const strayBatch = 1000

// condStrays is the condlog condition of a replica that cannot look for
// strays.
const condStrays = "cannot look for jobs on subjects no consumer takes"

// condStrayDead is the condlog condition of a tenant whose jobs on
// subjects no consumer takes are being dead-lettered: one line, not one
// per job.
const condStrayDead = "jobs on a subject no consumer takes dead-lettered as invalid"

// Strays are jobs on a subject of a configured tenant that none of its
// class consumers takes (dispatcher.Names.Routable: an op that does not
// exist, say, published with plain NATS): a work-queue stream would keep
// them for ever. Each replica looks for them at start and every
// strayInterval in its tenants' jobs streams — one stream info request per
// stream, listing its subjects — and dead-letters what it finds as invalid
// (stored first, then deleted from the stream; the dead letter's message id
// makes two replicas finding the same stray store one dead letter).
func (p *Pool) sweepStrays(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.sweepOnce(ctx); err != nil && ctx.Err() == nil {
			p.cond.Report(slog.LevelWarn, "", condStrays, "error", err)
		} else {
			p.cond.Clear("", condStrays)
		}
		t.Reset(strayInterval)
	}
}

// sweepOnce looks once in every jobs stream holding a tenant of this pool.
func (p *Pool) sweepOnce(ctx context.Context) error {
	shards := map[string]bool{}
	for _, l := range p.laneList() {
		shards[p.cfg.Names.JobsStream(l.id)] = true
	}
	var errs []error
	for name := range shards {
		if err := p.sweepStream(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Pool) sweepStream(ctx context.Context, name string) error {
	ictx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	s, err := p.cfg.JS.Stream(ictx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ictx, jetstream.WithSubjectFilter(p.cfg.Names.JobsSubjects()))
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	for subject, n := range info.State.Subjects {
		if p.cfg.Names.Routable(subject) {
			if n > 0 {
				p.ensureClassConsumer(ctx, subject)
			}
			continue
		}
		tenant, op, err := p.cfg.Names.ParseJobSubject(subject)
		if err != nil || p.lane(tenant) == nil {
			continue // another installation's, or a tenant this replica does not run
		}
		if err := p.deadLetterStrays(ctx, s, tenant, op, subject); err != nil {
			return err
		}
	}
	return nil
}

// ensureClassConsumer makes sure the urgent or bulk consumer taking the
// jobs on subject exists (a NATS producer's first job of the class, or a
// consumer a restarted server forgot) and that this replica's lane pulls
// from it.
func (p *Pool) ensureClassConsumer(ctx context.Context, subject string) {
	tenant, class, _, _, err := p.cfg.Names.ParseJobSubjectPriority(subject)
	if err != nil || class == dispatcher.PriorityNormal {
		return
	}
	l := p.lane(tenant)
	if l == nil {
		return
	}
	pl := l.pullers[class.Index()]
	if l.bound(pl) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, statusTimeout)
	created, err := dispatcher.EnsureClassConsumer(cctx, p.cfg.JS, p.cfg.Names, tenant, class)
	cancel()
	if err != nil {
		l.cond.Report(slog.LevelWarn, tenant, condPull, "class", class, "error", err)
		return
	}
	if created {
		p.log.Info("created the consumer of a class with jobs", "tenant", tenant, "priority", class)
	}
	pl.wakeUp()
}

// deadLetterStrays dead-letters the jobs on subject, oldest first.
func (p *Pool) deadLetterStrays(ctx context.Context, s jetstream.Stream, tenant, op, subject string) error {
	var seq uint64 = 1
	for range strayBatch {
		gctx, cancel := context.WithTimeout(ctx, statusTimeout)
		m, err := s.GetMsg(gctx, seq, jetstream.WithGetMsgSubject(subject))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stray on %s: %w", subject, err)
		}
		job, _ := dispatcher.DecodeJob(m.Data)
		h := deadLetterHeader(m.Header, tenant, op, job.ID,
			deadLetter{class: ClassInvalid, reason: fmt.Sprintf("unknown op %q: no consumer takes subject %s", op, subject)})
		h.Set(dispatcher.HeaderAttempts, "0")
		h.Set(dispatcher.HeaderLastAttempt, p.cfg.Now().UTC().Format(time.RFC3339Nano))
		h.Set(dispatcher.HeaderSubject, subject)
		h.Set(nats.MsgIdHdr, "dlq:"+tenant+":"+s.CachedInfo().Config.Name+":"+strconv.FormatUint(m.Sequence, 10))
		pctx, cancel := context.WithTimeout(ctx, deadLetterTimeout)
		_, err = p.cfg.JS.PublishMsg(pctx, &nats.Msg{Subject: p.cfg.Names.DLQSubject(tenant, op), Header: h, Data: m.Data})
		if err == nil {
			err = s.DeleteMsg(pctx, m.Sequence)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				err = nil // another replica deleted it first
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("dead-letter stray on %s: %w", subject, err)
		}
		if l := p.lane(tenant); l != nil {
			l.cond.Report(slog.LevelWarn, tenant, condStrayDead, "op", op, "subject", subject)
		}
		p.cfg.Hooks.JobFinished(tenant, op, OutcomeDead, 0)
		seq = m.Sequence + 1
	}
	return nil
}
