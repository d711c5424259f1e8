package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/tenants"
)

// ClassUnknownTenant is the error class of a dead letter holding a job of a
// tenant no jobs stream listens for: found in the single-stream layout's
// stream by the upgrade (see Provision). Replay it once the tenant is
// configured.
const ClassUnknownTenant = "unknown_tenant"

// migrationConsumer is the durable consumer through which Provision moves
// the legacy stream's jobs to the sharded streams.
const migrationConsumer = "orgdispatch_upgrade"

// legacyDetachedSubject is what the legacy stream listens on once the
// upgrade has begun: a subject no producer uses, so that the sharded
// streams can take the job subjects while it still holds jobs.
func (n Names) legacyDetachedSubject() string { return n.prefix + ".upgrading.jobs" }

// detachLegacy begins (or resumes) the upgrade from the single-stream
// layout: the legacy stream's consumers are deleted (after a pause each had
// in progress is written to the pauses bucket, where the new consumer finds
// it) and the stream is made to listen on a subject no producer uses. It
// returns the legacy stream, or nil when there is none.
//
// Producers publishing between this and the creation of the sharded
// streams get no answer from JetStream (the Publisher: ErrUnavailable) and
// should retry; nothing already queued is touched.
func detachLegacy(ctx context.Context, js jetstream.JetStream, names Names) (jetstream.Stream, error) {
	name := names.LegacyJobsStream()
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dispatcher: upgrade: stream %s: %w", name, err)
	}
	cfg := s.CachedInfo().Config
	if slices.Equal(cfg.Subjects, []string{names.legacyDetachedSubject()}) {
		return s, nil // detached by an earlier start
	}
	var kv jetstream.KeyValue
	list := s.ListConsumers(ctx)
	var consumers []*jetstream.ConsumerInfo
	for info := range list.Info() {
		consumers = append(consumers, info)
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("dispatcher: upgrade: list consumers of %s: %w", name, err)
	}
	for _, info := range consumers {
		if info.Name == migrationConsumer {
			continue
		}
		if tenant, ok := names.TenantOfConsumer(info.Name); ok && info.Paused && info.Config.PauseUntil != nil && info.Config.PauseUntil.After(time.Now()) {
			if kv == nil {
				if kv, err = js.KeyValue(ctx, names.PausesBucket()); err != nil {
					return nil, fmt.Errorf("dispatcher: upgrade: pauses bucket: %w", err)
				}
			}
			rec, err := pauseRecord(ctx, js, names, tenant)
			if err != nil {
				return nil, err
			}
			if d := rec.Until.Sub(*info.Config.PauseUntil); rec.Until.IsZero() || d > time.Second || d < -time.Second {
				rec = PauseRecord{Tenant: tenant, Until: info.Config.PauseUntil.UTC(), Reason: "paused before the upgrade to sharded streams", By: "upgrade", At: time.Now().UTC()}
				if err := putPauseRecord(ctx, kv, rec); err != nil {
					return nil, fmt.Errorf("dispatcher: upgrade: keep the pause of tenant %s: %w", tenant, err)
				}
			}
		}
		if err := s.DeleteConsumer(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("dispatcher: upgrade: delete consumer %s of %s: %w", info.Name, name, err)
		}
	}
	cfg.Subjects = []string{names.legacyDetachedSubject()}
	cfg.Description = "orgdispatch jobs of the single-stream layout, being moved to the sharded streams"
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("dispatcher: upgrade: detach stream %s from the job subjects: %w", name, err)
	}
	return s, nil
}

// legacyPerSubject is, for each shard, the per-subject limit its stream
// needs to take the legacy stream's jobs of ts's tenants: for each subject
// (tenant and operation), the jobs the legacy stream holds of it plus the
// tenant's max_backlog (the new jobs the Publisher may queue meanwhile). A
// shard's limit below that would refuse some of the moves, and the upgrade
// would never finish: ProvisionWhenReady retries it before any worker
// starts taking jobs. The limit is never lowered afterwards (ensureShard),
// so an upgrade resumed later keeps the room.
func legacyPerSubject(ctx context.Context, names Names, legacy jetstream.Stream, ts []tenants.Tenant) (map[int]int64, error) {
	info, err := legacy.Info(ctx, jetstream.WithSubjectFilter(names.JobsSubjects()))
	if err != nil {
		return nil, fmt.Errorf("dispatcher: upgrade: subjects of %s: %w", names.LegacyJobsStream(), err)
	}
	backlog := make(map[string]int64, len(ts))
	for _, t := range ts {
		backlog[t.ID] = int64(t.Backlog())
	}
	out := map[int]int64{}
	for subject, n := range info.State.Subjects {
		tenant, _, err := names.ParseJobSubject(subject)
		if b, ok := backlog[tenant]; err == nil && ok {
			i := ShardOf(tenant)
			out[i] = max(out[i], int64(n)+b)
		}
	}
	return out, nil
}

// drainLegacy moves every job the detached legacy stream holds to its
// tenant's jobs stream, in stream order, and deletes the legacy stream once
// it is empty. Each job keeps its body and headers, and its Nats-Msg-Id
// (the tenant-scoped one the Publisher set, or "upgrade:<tenant>:<seq>"),
// so a move repeated after a crash is a duplicate, not a second job. A job
// of a tenant no jobs stream listens for is dead-lettered as
// ClassUnknownTenant. A job is removed from the legacy stream only once its
// new copy (or dead letter) is stored: nothing is lost, whichever process
// moves it and wherever it stops.
func drainLegacy(ctx context.Context, js jetstream.JetStream, names Names, legacy jetstream.Stream) error {
	name := names.LegacyJobsStream()
	cons, err := legacy.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       migrationConsumer,
		Description:   "orgdispatch: moves the single-stream layout's jobs to the sharded streams",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 1000,
	})
	if err != nil {
		if doneElsewhere(ctx, js, name, err) {
			return nil
		}
		return fmt.Errorf("dispatcher: upgrade: consumer of %s: %w", name, err)
	}
	moved, deadLettered := 0, 0
	for {
		info, err := legacy.Info(ctx)
		if err != nil {
			if doneElsewhere(ctx, js, name, err) {
				return nil
			}
			return fmt.Errorf("dispatcher: upgrade: stream %s: %w", name, err)
		}
		if info.State.Msgs == 0 {
			break
		}
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			if doneElsewhere(ctx, js, name, err) {
				return nil
			}
			return fmt.Errorf("dispatcher: upgrade: fetch from %s: %w", name, err)
		}
		for m := range batch.Messages() {
			unknown, err := moveLegacyJob(ctx, js, names, m)
			if err != nil {
				_ = m.Nak()
				return err
			}
			if unknown {
				deadLettered++
			} else {
				moved++
			}
			if err := m.DoubleAck(ctx); err != nil {
				return fmt.Errorf("dispatcher: upgrade: remove a moved job from %s: %w", name, err)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			if doneElsewhere(ctx, js, name, err) {
				return nil
			}
			return fmt.Errorf("dispatcher: upgrade: fetch from %s: %w", name, err)
		}
	}
	if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("dispatcher: upgrade: delete the emptied stream %s: %w", name, err)
	}
	slog.Info("upgraded to sharded jobs streams", "stream", name, "moved", moved, "dead_lettered_unknown_tenant", deadLettered)
	return nil
}

// doneElsewhere reports whether err, met while draining the legacy stream,
// is because that stream is gone: another process (a replica provisioning
// at the same time) moved the last jobs and deleted it while this one
// waited for more. Then the upgrade is done; any other cause is an error.
func doneElsewhere(ctx context.Context, js jetstream.JetStream, name string, err error) bool {
	if !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrConsumerDeleted) {
		return false
	}
	_, serr := js.Stream(ctx, name)
	return errors.Is(serr, jetstream.ErrStreamNotFound)
}

// moveLegacyJob stores one legacy job in its tenant's jobs stream, or as a
// dead letter when no stream listens for its tenant (unknown reports so).
func moveLegacyJob(ctx context.Context, js jetstream.JetStream, names Names, m jetstream.Msg) (unknown bool, err error) {
	meta, err := m.Metadata()
	if err != nil {
		return false, fmt.Errorf("dispatcher: upgrade: %w", err)
	}
	out := nats.NewMsg(m.Subject())
	for k, vs := range m.Headers() {
		out.Header[k] = vs
	}
	out.Data = m.Data()
	out.Header.Set(HeaderUpgraded, strconv.FormatUint(meta.Sequence.Stream, 10))
	tenant, op, perr := names.ParseJobSubject(m.Subject())
	if out.Header.Get(nats.MsgIdHdr) == "" {
		out.Header.Set(nats.MsgIdHdr, "upgrade:"+tenant+":"+strconv.FormatUint(meta.Sequence.Stream, 10))
	}
	if perr == nil {
		_, err = js.PublishMsg(ctx, out, jetstream.WithExpectStream(names.JobsStream(tenant)))
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
			return false, fmt.Errorf("dispatcher: upgrade: move job %d (%s): %w", meta.Sequence.Stream, m.Subject(), err)
		}
	}
	// No stream listens for it: keep it as a dead letter.
	if tenant == "" {
		tenant, op = AuditNoTenant, "unknown"
	}
	dl := nats.NewMsg(names.DLQSubject(tenant, op))
	dl.Data = m.Data()
	dl.Header.Set(HeaderTenant, tenant)
	dl.Header.Set(HeaderOp, op)
	dl.Header.Set(HeaderErrorClass, ClassUnknownTenant)
	dl.Header.Set(HeaderError, "no jobs stream listens for this tenant: it is not configured (moved from "+names.LegacyJobsStream()+" by the upgrade)")
	dl.Header.Set(HeaderSubject, m.Subject())
	dl.Header.Set(HeaderAttempts, "0")
	dl.Header.Set(HeaderLastAttempt, time.Now().UTC().Format(time.RFC3339Nano))
	dl.Header.Set(nats.MsgIdHdr, "upgrade-dlq:"+strconv.FormatUint(meta.Sequence.Stream, 10))
	if _, err := js.PublishMsg(ctx, dl, jetstream.WithExpectStream(names.DLQStream())); err != nil {
		return true, fmt.Errorf("dispatcher: upgrade: dead-letter job %d of unknown tenant (%s): %w", meta.Sequence.Stream, m.Subject(), err)
	}
	return true, nil
}
