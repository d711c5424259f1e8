package dispatcher

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// jobsStreamsWithClasses returns the jobs streams that exist and every
// tenant's jobs by class, from each stream's per-subject counts. A stream
// found before costs one request, its info with the counts (as many as
// JobsStreams' plain info); a shard without a stream is looked up again
// each time, as JobsStreams does.
func (a *Admin) jobsStreamsWithClasses(ctx context.Context) ([]jetstream.Stream, map[string]ClassCounts, error) {
	var out []jetstream.Stream
	classes := map[string]ClassCounts{}
	for i := range JobShards {
		name := a.names.ShardStream(i)
		s, err := a.shard(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("dispatcher: stream %s: %w", name, err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(a.names.JobsSubjects()))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			a.forgetShard(name)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("dispatcher: stream %s: subject counts: %w", name, err)
		}
		for tenant, c := range a.names.ClassBacklogs(info.State.Subjects) {
			classes[tenant] = c
		}
		out = append(out, s)
	}
	return out, classes, nil
}

// tenantClasses is one tenant's jobs by class: one request, its jobs
// stream's counts of the tenant's subjects.
func (a *Admin) tenantClasses(ctx context.Context, id string) (ClassCounts, error) {
	s, err := a.shard(ctx, a.names.JobsStream(id))
	if err == nil {
		var info *jetstream.StreamInfo
		if info, err = s.Info(ctx, jetstream.WithSubjectFilter(a.names.TenantJobsFilter(id))); err == nil {
			return a.names.ClassBacklogs(info.State.Subjects)[id], nil
		}
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		a.forgetShard(a.names.JobsStream(id))
		return ClassCounts{}, fmt.Errorf("admin: tenant %s: %w", id, ErrTenantNotFound)
	}
	return ClassCounts{}, fmt.Errorf("admin: tenant %s: subject counts: %w", id, err)
}

// shard is the jobs stream name, looked up once.
func (a *Admin) shard(ctx context.Context, name string) (jetstream.Stream, error) {
	a.mu.Lock()
	s := a.shards[name]
	a.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := a.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if a.shards == nil {
		a.shards = map[string]jetstream.Stream{}
	}
	a.shards[name] = s
	a.mu.Unlock()
	return s, nil
}

func (a *Admin) forgetShard(name string) {
	a.mu.Lock()
	delete(a.shards, name)
	a.mu.Unlock()
}
