package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Pause stops every worker replica from receiving tenant's jobs until until.
//
// The pause is the JetStream consumer pause of the tenant's durable consumer:
// the server stops delivering at once to every replica, the pause survives
// worker restarts, shows in `nats consumer info`, and the server publishes a
// pause advisory (Names.PauseAdvisorySubject) that replicas watch to hand back
// messages they already hold. Pause then records reason and by in the pauses
// bucket (a PauseRecord keyed by tenant) so that the API and the dashboard can
// say why.
//
// Pause sets the deadline as given: a later call with an earlier until
// shortens a pause (an operator's choice). Use ExtendPause to only extend one
// (the worker on a 429). until must be in the future; use Resume
// to end a pause early.
func Pause(ctx context.Context, js jetstream.JetStream, names Names, tenant string, until time.Time, reason, by string) error {
	if !ValidTenantID(tenant) {
		return fmt.Errorf("dispatcher: pause: invalid tenant id %q", tenant)
	}
	now := time.Now()
	if !until.After(now) {
		return fmt.Errorf("dispatcher: pause tenant %s: until %s is not in the future (use Resume to end a pause)", tenant, until.UTC().Format(time.RFC3339))
	}
	// Every class consumer pauses: the urgent and bulk ones first, then the
	// normal one, whose pause (and its advisory) the replicas watch.
	for _, name := range pauseOrder(names, tenant) {
		if _, err := js.PauseConsumer(ctx, names.JobsStream(tenant), name, until); err != nil && !(name != names.Consumer(tenant) && errors.Is(err, jetstream.ErrConsumerNotFound)) {
			return fmt.Errorf("dispatcher: pause tenant %s: %w", tenant, err)
		}
	}
	rec := PauseRecord{Tenant: tenant, Until: until.UTC(), Reason: reason, By: by, At: now.UTC()}
	kv, err := js.KeyValue(ctx, names.PausesBucket())
	if err != nil {
		return fmt.Errorf("dispatcher: tenant %s is paused until %s but its reason was not recorded: pauses bucket: %w", tenant, until.UTC().Format(time.RFC3339), err)
	}
	if err := putPauseRecord(ctx, kv, rec); err != nil {
		return fmt.Errorf("dispatcher: tenant %s is paused until %s but its reason was not recorded: %w", tenant, until.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// pauseOrder is the order Pause and Resume change a tenant's class
// consumers in: normal, the one replicas watch, last. A missing urgent or
// bulk consumer (a deployment provisioned before classes existed, not yet
// provisioned again) is skipped.
func pauseOrder(names Names, tenant string) []string {
	return []string{names.PriorityConsumer(tenant, PriorityUrgent), names.PriorityConsumer(tenant, PriorityBulk), names.Consumer(tenant)}
}

// putPauseRecord stores rec, keyed by its tenant. A consumer created again
// (after a nats-server restart forgot a memory-storage one) starts paused
// until rec.Until (see ensureConsumer).
func putPauseRecord(ctx context.Context, kv jetstream.KeyValue, rec PauseRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode pause record: %w", err)
	}
	_, err = kv.Put(ctx, rec.Tenant, data)
	return err
}

// ExtendPause pauses tenant until until unless its consumer is already paused
// at least that long: it never shortens a pause. The consumer pause API keeps
// whichever deadline reaches the server last, so two replicas answered 429 at
// nearly the same time could otherwise shorten each other's pause (and the
// server's end-of-pause advisory would then resume every replica early).
// Reading the deadline first narrows that race to one round trip; a pause
// that still ends early only costs one more 429, which pauses again.
// extended reports whether the pause was set.
func ExtendPause(ctx context.Context, js jetstream.JetStream, names Names, tenant string, until time.Time, reason, by string) (extended bool, err error) {
	if !ValidTenantID(tenant) {
		return false, fmt.Errorf("dispatcher: pause: invalid tenant id %q", tenant)
	}
	cons, err := js.Consumer(ctx, names.JobsStream(tenant), names.Consumer(tenant))
	if err != nil {
		return false, fmt.Errorf("dispatcher: pause tenant %s: %w", tenant, err)
	}
	if info := cons.CachedInfo(); info.Paused && info.Config.PauseUntil != nil && !info.Config.PauseUntil.Before(until) {
		return false, nil
	}
	if err := Pause(ctx, js, names, tenant, until, reason, by); err != nil {
		return false, err
	}
	return true, nil
}

// Resume ends tenant's pause at once (every replica resumes receiving its
// jobs) and deletes its PauseRecord. Resuming a tenant that is not paused is
// not an error.
func Resume(ctx context.Context, js jetstream.JetStream, names Names, tenant string) error {
	if !ValidTenantID(tenant) {
		return fmt.Errorf("dispatcher: resume: invalid tenant id %q", tenant)
	}
	for _, name := range pauseOrder(names, tenant) {
		if _, err := js.ResumeConsumer(ctx, names.JobsStream(tenant), name); err != nil && !(name != names.Consumer(tenant) && errors.Is(err, jetstream.ErrConsumerNotFound)) {
			return fmt.Errorf("dispatcher: resume tenant %s: %w", tenant, err)
		}
	}
	kv, err := js.KeyValue(ctx, names.PausesBucket())
	if err != nil {
		return fmt.Errorf("dispatcher: tenant %s resumed but its pause record remains: pauses bucket: %w", tenant, err)
	}
	if err := kv.Delete(ctx, tenant); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("dispatcher: tenant %s resumed but its pause record remains: %w", tenant, err)
	}
	return nil
}

// PauseState reports whether tenant is paused: until is the consumer's pause
// deadline, zero when it is not paused (or the pause has passed). rec is the
// recorded reason of the current pause, nil when the tenant is not paused or
// no reason was recorded for this pause (one set with `nats consumer pause`,
// say: a record whose deadline differs from the consumer's is stale).
func PauseState(ctx context.Context, js jetstream.JetStream, names Names, tenant string) (until time.Time, rec *PauseRecord, err error) {
	if !ValidTenantID(tenant) {
		return time.Time{}, nil, fmt.Errorf("dispatcher: pause state: invalid tenant id %q", tenant)
	}
	cons, err := js.Consumer(ctx, names.JobsStream(tenant), names.Consumer(tenant))
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("dispatcher: pause state of tenant %s: %w", tenant, err)
	}
	info := cons.CachedInfo()
	if !info.Paused || info.Config.PauseUntil == nil || !info.Config.PauseUntil.After(time.Now()) {
		return time.Time{}, nil, nil
	}
	until = *info.Config.PauseUntil
	kv, err := js.KeyValue(ctx, names.PausesBucket())
	if err != nil {
		return until, nil, fmt.Errorf("dispatcher: pause state of tenant %s: pauses bucket: %w", tenant, err)
	}
	entry, err := kv.Get(ctx, tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return until, nil, nil
	}
	if err != nil {
		return until, nil, fmt.Errorf("dispatcher: pause state of tenant %s: read record: %w", tenant, err)
	}
	var r PauseRecord
	if err := json.Unmarshal(entry.Value(), &r); err != nil {
		return until, nil, fmt.Errorf("dispatcher: pause state of tenant %s: decode record: %w", tenant, err)
	}
	if d := r.Until.Sub(until); d > time.Second || d < -time.Second {
		// A record of an earlier pause: this one was set some other way.
		return until, nil, nil
	}
	return until, &r, nil
}
