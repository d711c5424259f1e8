package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/orgdispatch/orgdispatch/tenants"
)

// Defaults of StreamConfig.
const (
	DefaultReplicas        = 1
	DefaultMaxConsumers    = 10_000
	DefaultDuplicateWindow = 10 * time.Minute
	DefaultDLQMaxAge       = 14 * 24 * time.Hour
	// DefaultDLQMaxPerSubject bounds the dead letters kept per tenant and
	// operation: beyond it the tenant's oldest of that operation go first,
	// so one tenant's flood of failures never takes another's dead letters.
	DefaultDLQMaxPerSubject = 100_000
	DefaultStatusTTL        = 7 * 24 * time.Hour
	// Defaults bounding the audit stream: records older than
	// DefaultAuditMaxAge, or beyond the newest DefaultAuditMaxMsgs or
	// DefaultAuditMaxBytes, are dropped (oldest first).
	DefaultAuditMaxAge   = 90 * 24 * time.Hour
	DefaultAuditMaxMsgs  = 100_000
	DefaultAuditMaxBytes = 256 << 20
	// DefaultReplicasTTL is how long a worker replica's heartbeat stays in
	// the replicas bucket: a replica that stops heartbeating vanishes from it
	// (and stops counting towards org-scoped quota shares) after this.
	DefaultReplicasTTL = 30 * time.Second
)

// ConsumerAckWait is the AckWait of every tenant consumer: how long a worker
// replica may hold a delivered job without acknowledging it (Ack, Nak, Term)
// or reporting progress (InProgress) before JetStream redelivers it, e.g. to
// another replica after a crash. One platform request may take up to the
// platform client's HTTP timeout (60 s) and an operation may make several
// (campaign.set_status: GET, PUT, a retry on conflict), and a job may wait on
// its tenant's rate limiter first, so a worker must call InProgress before
// each platform request and while it waits; AckWait then bounds only how long
// a crashed replica's jobs stay invisible.
const ConsumerAckWait = 60 * time.Second

// ConsumerMaxAckPending is the MaxAckPending of every tenant consumer: how
// many of a tenant's jobs may be out (delivered, not yet acknowledged) at
// once, cluster-wide. It is deliberately far above any lane's concurrency:
// nats-server counts a job handed back with a delay (a retry's backoff, a
// hand-back during a pause) and a job held by a replica that died as out
// until it is redelivered, so a cap of the tenant's concurrency let C such
// jobs stop the whole tenant — for a retry's backoff (minutes) or a dead
// replica's AckWait. What bounds the calls a tenant makes to the platform is
// each lane's own concurrency (jobs in flight per replica) and rate limiter;
// this cap only keeps a tenant from holding unbounded state on the server.
const ConsumerMaxAckPending = 10_000

// jobHeaderRoom is what a job message may carry in headers beyond
// MaxJobBytes of body (Nats-Msg-Id, Orgdispatch-Job-Id, tracing headers).
const jobHeaderRoom = 16 << 10

// StreamConfig sizes the streams and buckets Provision creates. Zero values
// mean the defaults.
type StreamConfig struct {
	// Replicas of every stream and bucket: 1 for a single (embedded) server,
	// 3 in a cluster. Default 1.
	Replicas int
	// MaxConsumers caps each jobs stream's consumers: three per tenant of
	// its shard (a consumer per priority class). Set explicitly because
	// nats-server 2.15 caps streams at 1,000 consumers by default. Default
	// 10,000.
	MaxConsumers int
	// DuplicateWindow is how long a job id is remembered: a job published
	// again with the same id (and tenant) within it is not queued twice.
	// Default 10 minutes.
	DuplicateWindow time.Duration
	// DLQMaxAge is how long dead letters are kept. Default 14 days.
	DLQMaxAge time.Duration
	// DLQMaxPerSubject is how many dead letters are kept per tenant and
	// operation (the oldest go first). Default DefaultDLQMaxPerSubject.
	DLQMaxPerSubject int64
	// AuditMaxAge, AuditMaxMsgs and AuditMaxBytes bound the audit stream
	// (the oldest records go first). Defaults DefaultAuditMaxAge,
	// DefaultAuditMaxMsgs, DefaultAuditMaxBytes.
	AuditMaxAge   time.Duration
	AuditMaxMsgs  int64
	AuditMaxBytes int64
	// StatusTTL is how long job status records are kept. Default 7 days.
	StatusTTL time.Duration
	// ReplicasTTL is how long a replica heartbeat (and a page of its lane
	// figures) is kept. Default 30 s.
	ReplicasTTL time.Duration
	// MaxBytes and MaxMsgs bound the jobs stream; when either is reached,
	// publishing fails with *FullError rather than dropping queued jobs.
	// 0 or -1: unlimited (the default).
	MaxBytes int64
	MaxMsgs  int64
	// ConsumerStorage is where nats-server keeps each tenant consumer's
	// state (delivered and acknowledged sequences, delivery counts, pause):
	// jetstream.FileStorage (the default) or jetstream.MemoryStorage. The
	// jobs themselves are in the jobs stream, on file, either way.
	//
	// Memory storage spares the server rewriting a state file per consumer
	// on every delivery and ack — with 1,000 tenants most of its CPU — but a
	// single nats-server forgets memory-storage consumers when it restarts:
	// until Provision (or EnsureConsumerWith) creates them again nothing is
	// delivered; then every job still in the stream is delivered afresh
	// (at-least-once holds), while pauses in progress and delivery counts
	// are lost. nats-server cannot change an existing consumer's storage;
	// see ConsumerStorageError.
	ConsumerStorage jetstream.StorageType
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Replicas <= 0 {
		c.Replicas = DefaultReplicas
	}
	if c.MaxConsumers <= 0 {
		c.MaxConsumers = DefaultMaxConsumers
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.DLQMaxAge <= 0 {
		c.DLQMaxAge = DefaultDLQMaxAge
	}
	if c.DLQMaxPerSubject <= 0 {
		c.DLQMaxPerSubject = DefaultDLQMaxPerSubject
	}
	if c.AuditMaxAge <= 0 {
		c.AuditMaxAge = DefaultAuditMaxAge
	}
	if c.AuditMaxMsgs <= 0 {
		c.AuditMaxMsgs = DefaultAuditMaxMsgs
	}
	if c.AuditMaxBytes <= 0 {
		c.AuditMaxBytes = DefaultAuditMaxBytes
	}
	if c.StatusTTL <= 0 {
		c.StatusTTL = DefaultStatusTTL
	}
	if c.ReplicasTTL <= 0 {
		c.ReplicasTTL = DefaultReplicasTTL
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = -1
	}
	if c.MaxMsgs <= 0 {
		c.MaxMsgs = -1
	}
	return c
}

func (c StreamConfig) validate() error {
	switch c.ConsumerStorage {
	case jetstream.FileStorage, jetstream.MemoryStorage:
		return nil
	default:
		return fmt.Errorf("dispatcher: consumer storage %d: want file (%d) or memory (%d)", c.ConsumerStorage, jetstream.FileStorage, jetstream.MemoryStorage)
	}
}

// JobsStreamConfig is the configuration Provision gives jobs stream shard
// (0 ≤ shard < JobShards), listening on subjects (its tenants' filters,
// TenantJobsFilter) with maxPerSubject (the largest backlog limit its
// tenants have had: Provision never lowers it) as its per-subject limit.
//
// The per-subject limit with DiscardNewPer is the server's own bound of one
// tenant's backlog, per operation: a producer publishing more of a tenant's
// jobs of one operation than that is refused by nats-server ("maximum
// messages per subject exceeded") while every other subject of the stream —
// every other tenant — takes jobs as before. The Publisher enforces each
// tenant's exact limit over all its operations (BacklogFullError).
func JobsStreamConfig(names Names, cfg StreamConfig, shard int, subjects []string, maxPerSubject int64) jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	return jetstream.StreamConfig{
		Name:                 names.ShardStream(shard),
		Description:          fmt.Sprintf("orgdispatch jobs, shard %d of %d: one subject per tenant and operation", shard, JobShards),
		Subjects:             subjects,
		Retention:            jetstream.WorkQueuePolicy,
		Storage:              jetstream.FileStorage,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgsPerSubject:    maxPerSubject,
		Duplicates:           cfg.DuplicateWindow,
		MaxConsumers:         cfg.MaxConsumers,
		Replicas:             cfg.Replicas,
		MaxMsgs:              cfg.MaxMsgs,
		MaxBytes:             cfg.MaxBytes,
		MaxMsgSize:           MaxJobBytes + jobHeaderRoom,
		AllowDirect:          true,
		Metadata:             map[string]string{MetaShards: strconv.Itoa(JobShards)},
		// Fired schedules of the shard's tenants (see Schedules).
		Sources: names.jobsStreamSources(shard),
	}
}

// MetaShards is the jobs streams' metadata key holding JobShards, and
// MetaMaxBacklog the tenant consumers' one holding the tenant's backlog
// limit (tenants.Tenant.Backlog), which publishers read.
const (
	MetaShards     = "orgdispatch_shards"
	MetaMaxBacklog = "orgdispatch_max_backlog"
)

// DLQStreamConfig is the configuration Provision gives the dead-letter stream.
func DLQStreamConfig(names Names, cfg StreamConfig) jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	return jetstream.StreamConfig{
		Name:              names.DLQStream(),
		Description:       "orgdispatch dead letters: jobs that cannot run, with why in headers",
		Subjects:          []string{names.DLQSubjects()},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
		MaxAge:            cfg.DLQMaxAge,
		MaxMsgsPerSubject: cfg.DLQMaxPerSubject,
		Replicas:          cfg.Replicas,
	}
}

// ConsumerConfig is the configuration of a tenant's durable consumer with
// the default StreamConfig (file storage); see StreamConfig.ConsumerConfig.
func ConsumerConfig(names Names, t tenants.Tenant) jetstream.ConsumerConfig {
	return StreamConfig{}.ConsumerConfig(names, t)
}

// ConsumerConfig is the configuration of tenant t's durable consumer of its
// normal class (tenant_<id>), with c's ConsumerStorage; see
// PriorityConsumerConfig.
func (c StreamConfig) ConsumerConfig(names Names, t tenants.Tenant) jetstream.ConsumerConfig {
	return c.PriorityConsumerConfig(names, t, PriorityNormal)
}

// PriorityConsumerConfig is the configuration of tenant t's durable
// consumer of class p, with c's ConsumerStorage: filtered on the class's
// subjects (Names.PriorityFilters). It carries no PauseUntil: a new
// consumer starts unpaused, an existing one keeps whatever pause it has (see
// EnsureConsumer).
func (c StreamConfig) PriorityConsumerConfig(names Names, t tenants.Tenant, p Priority) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        names.PriorityConsumer(t.ID, p),
		Description:    "orgdispatch " + string(p) + " jobs of tenant " + t.ID,
		FilterSubjects: names.PriorityFilters(t.ID, p),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        ConsumerAckWait,
		// The worker counts attempts itself: a 429 hand-back must not use up
		// a job's budget, so the server must never give up on a message.
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: ConsumerMaxAckPending,
		MemoryStorage: c.ConsumerStorage == jetstream.MemoryStorage,
		Metadata:      consumerMetadata(t),
	}
}

// provisionConcurrency bounds the consumer requests Provision has in flight.
// 64 instead of 16 provisioned 10,000 tenants in 10.8 s instead of 18.2 s
// (docs/benchmarks.md): the requests wait on nats-server's JetStream API
// more than they load it.
const provisionConcurrency = 64

// Provision creates or updates everything orgdispatch needs in NATS: the jobs,
// dead-letter, audit and schedules streams, the status, replicas, lanes and pauses buckets, and one
// durable consumer per tenant. It is idempotent: running it again against the
// same setup changes nothing, a consumer of an earlier version is updated in
// place, and a tenant's pause survives. Consumers of tenants missing from ts
// are left alone (see RemoveConsumer).
func Provision(ctx context.Context, js jetstream.JetStream, names Names, cfg StreamConfig, ts []tenants.Tenant) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := checkTenants(ts, cfg.MaxConsumers); err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, DLQStreamConfig(names, cfg)); err != nil {
		return fmt.Errorf("dispatcher: provision stream %s: %w", names.DLQStream(), err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, AuditStreamConfig(names, cfg)); err != nil {
		return fmt.Errorf("dispatcher: provision stream %s: %w", names.AuditStream(), err)
	}
	// Before the jobs streams, which source it.
	if _, err := js.CreateOrUpdateStream(ctx, SchedulesStreamConfig(names, cfg)); err != nil {
		return fmt.Errorf("dispatcher: provision stream %s: %w", names.SchedulesStream(), err)
	}
	for _, kv := range []jetstream.KeyValueConfig{
		{
			Bucket:      names.StatusBucket(),
			Description: "orgdispatch job status, keyed <tenant>.<job id>",
			History:     1,
			TTL:         cfg.StatusTTL,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		},
		{
			Bucket:      names.PausesBucket(),
			Description: "orgdispatch tenant pauses: why and by whom",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
		},
	} {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kv); err != nil {
			return fmt.Errorf("dispatcher: provision bucket %s: %w", kv.Bucket, err)
		}
	}
	if err := EnsureVolatileBuckets(ctx, js, names, cfg); err != nil {
		return err
	}

	// A deployment of the single-stream layout: its stream stops taking
	// jobs first (the sharded streams' subjects would overlap its own),
	// and what it holds moves over once the shards are there.
	legacy, err := detachLegacy(ctx, js, names)
	if err != nil {
		return err
	}
	var minPerSubject map[int]int64
	if legacy != nil {
		if minPerSubject, err = legacyPerSubject(ctx, names, legacy, ts); err != nil {
			return err
		}
	}
	if err := provisionShards(ctx, js, names, cfg, ts, minPerSubject); err != nil {
		return err
	}
	if legacy != nil {
		return drainLegacy(ctx, js, names, legacy)
	}
	return nil
}

// VolatileBucketConfigs are the replicas and lanes buckets: in memory,
// rewritten every heartbeat and worthless after a restart.
func VolatileBucketConfigs(names Names, cfg StreamConfig) []jetstream.KeyValueConfig {
	cfg = cfg.withDefaults()
	return []jetstream.KeyValueConfig{
		{
			Bucket:      names.ReplicasBucket(),
			Description: "orgdispatch worker replica heartbeats",
			History:     1,
			TTL:         cfg.ReplicasTTL,
			Storage:     jetstream.MemoryStorage,
			Replicas:    cfg.Replicas,
		},
		{
			Bucket:      names.LanesBucket(),
			Description: "orgdispatch worker replicas' lane figures, in pages keyed <replica>.<page>",
			History:     1,
			// A page is rewritten when it changes, and at least every third
			// of the TTL (see worker), so it lives as long as a heartbeat.
			TTL:      cfg.ReplicasTTL,
			Storage:  jetstream.MemoryStorage,
			Replicas: cfg.Replicas,
		},
	}
}

// EnsureVolatileBuckets creates (or updates) the replicas and lanes
// buckets. A single nats-server forgets them when it restarts, being in
// memory; worker replicas call this when their heartbeat finds no bucket.
func EnsureVolatileBuckets(ctx context.Context, js jetstream.JetStream, names Names, cfg StreamConfig) error {
	for _, kv := range VolatileBucketConfigs(names, cfg) {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kv); err != nil {
			return fmt.Errorf("dispatcher: provision bucket %s: %w", kv.Bucket, err)
		}
	}
	return nil
}

// provisionShards creates or updates the jobs streams of ts's shards and
// their tenants' consumers. A shard's per-subject limit is at least
// minPerSubject[shard].
func provisionShards(ctx context.Context, js jetstream.JetStream, names Names, cfg StreamConfig, ts []tenants.Tenant, minPerSubject map[int]int64) error {
	byShard := map[int][]tenants.Tenant{}
	for _, t := range ts {
		i := ShardOf(t.ID)
		byShard[i] = append(byShard[i], t)
	}
	// Each shard's stream, then its consumers: one listing instead of one
	// request per tenant, as most consumers of a re-provisioned setup exist
	// already and need nothing. Refuse before changing anything when a
	// consumer has the other storage: nats-server would refuse each on its
	// own, leaving the others updated.
	existing := make([]map[string]*jetstream.ConsumerInfo, JobShards)
	needClasses := make([]map[string]bool, JobShards) // urgent and bulk consumers with jobs, by name
	var mismatched []string
	var mismatchedStream string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, group := range byShard {
		g.Go(func() error {
			stream, err := ensureShard(gctx, js, names, cfg, i, group, minPerSubject[i])
			if err != nil {
				return err
			}
			if needClasses[i], err = classesWithJobs(gctx, names, stream); err != nil {
				return err
			}
			have := map[string]*jetstream.ConsumerInfo{}
			list := stream.ListConsumers(gctx)
			for info := range list.Info() {
				have[info.Name] = info
			}
			if err := list.Err(); err != nil {
				return fmt.Errorf("dispatcher: provision: list consumers of %s: %w", names.ShardStream(i), err)
			}
			existing[i] = have
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, t := range ts {
		for _, p := range classOrder {
			if info := existing[ShardOf(t.ID)][names.PriorityConsumer(t.ID, p)]; info != nil && info.Config.MemoryStorage != (cfg.ConsumerStorage == jetstream.MemoryStorage) {
				mismatched = append(mismatched, info.Name)
				mismatchedStream = names.JobsStream(t.ID)
			}
		}
	}
	if len(mismatched) > 0 {
		return &ConsumerStorageError{Stream: mismatchedStream, Consumers: mismatched, Want: cfg.ConsumerStorage}
	}

	pauses, err := pauseRecords(ctx, js, names)
	if err != nil {
		return err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(provisionConcurrency)
	for _, t := range ts {
		var todo []jetstream.ConsumerConfig
		var exists []bool
		for _, p := range classOrder {
			name := names.PriorityConsumer(t.ID, p)
			info := existing[ShardOf(t.ID)][name]
			want := cfg.PriorityConsumerConfig(names, t, p)
			if info != nil && consumerUpToDate(info.Config, want) {
				continue
			}
			if info == nil && p != PriorityNormal && !needClasses[ShardOf(t.ID)][name] {
				continue // created when the class has jobs (see EnsureClassConsumer)
			}
			todo, exists = append(todo, want), append(exists, info != nil)
		}
		if len(todo) == 0 {
			continue
		}
		g.Go(func() error {
			for i, want := range todo {
				if _, err := ensureConsumer(gctx, js, names, t.ID, want, exists[i], pauses[t.ID]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// classesWithJobs lists the urgent and bulk consumers whose subjects hold
// jobs in stream (one stream info request): those Provision creates. A
// tenant's urgent and bulk consumers exist only once the class has had
// jobs, so that the thousands of tenants that never use a class cost
// nats-server nothing for it (a consumer more per tenant and class made
// provisioning 10,000 tenants six times slower: see docs/benchmarks.md).
func classesWithJobs(ctx context.Context, names Names, stream jetstream.Stream) (map[string]bool, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(names.JobsSubjects()))
	if err != nil {
		return nil, fmt.Errorf("dispatcher: provision: subjects of %s: %w", stream.CachedInfo().Config.Name, err)
	}
	out := map[string]bool{}
	for subject, n := range info.State.Subjects {
		if n == 0 || !names.Routable(subject) {
			continue
		}
		if tenant, p, _, _, err := names.ParseJobSubjectPriority(subject); err == nil && p != PriorityNormal {
			out[names.PriorityConsumer(tenant, p)] = true
		}
	}
	return out, nil
}

// classOrder is the order a tenant's class consumers are created or
// updated in: normal first, because before classes existed it took every
// job of the tenant (orgdispatch.jobs.<id>.>) and a work-queue stream
// refuses consumers whose filters overlap — its filters must narrow before
// the urgent and bulk consumers can exist.
var classOrder = []Priority{PriorityNormal, PriorityUrgent, PriorityBulk}

// ensureShard creates jobs stream i listening on group's tenants' subjects,
// or adds those it lacks to it. A subject of a tenant not in group stays:
// Provision adds tenants, RetireTenant takes one out. Its per-subject limit
// is at least minPer.
func ensureShard(ctx context.Context, js jetstream.JetStream, names Names, cfg StreamConfig, i int, group []tenants.Tenant, minPer int64) (jetstream.Stream, error) {
	name := names.ShardStream(i)
	stream, err := js.Stream(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("dispatcher: provision stream %s: %w", name, err)
	}
	var subjects []string
	var maxPer int64
	if stream != nil {
		have := stream.CachedInfo().Config
		subjects = slices.Clone(have.Subjects)
		maxPer = have.MaxMsgsPerSubject
	}
	groupMax := minPer
	for _, t := range group {
		f := names.TenantJobsFilter(t.ID)
		if !slices.Contains(subjects, f) {
			subjects = append(subjects, f)
		}
		groupMax = max(groupMax, int64(t.Backlog()))
	}
	// The per-subject limit is only ever raised (an unlimited one stays):
	// nats-server enforces a lowered MaxMsgsPerSubject at once by deleting
	// each subject's oldest messages beyond it, whatever the discard
	// policy — queued jobs of a tenant whose max_backlog was lowered, or of
	// a retired one. Each tenant's own limit is the Publisher's.
	if stream == nil || maxPer > 0 {
		maxPer = max(maxPer, groupMax)
	}
	slices.Sort(subjects)
	want := JobsStreamConfig(names, cfg, i, subjects, maxPer)
	if stream != nil && shardUpToDate(stream.CachedInfo().Config, want) {
		return stream, nil
	}
	if stream == nil {
		stream, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Created meanwhile by another process: add to it.
			return ensureShard(ctx, js, names, cfg, i, group, minPer)
		}
	} else {
		stream, err = js.UpdateStream(ctx, want)
	}
	if err != nil {
		return nil, fmt.Errorf("dispatcher: provision stream %s: %w", name, err)
	}
	return stream, nil
}

// shardUpToDate reports whether a jobs stream's configuration has every
// setting JobsStreamConfig manages.
func shardUpToDate(have, want jetstream.StreamConfig) bool {
	hs := slices.Clone(have.Subjects)
	slices.Sort(hs)
	return slices.Equal(hs, want.Subjects) &&
		have.Description == want.Description &&
		have.Discard == want.Discard && have.DiscardNewPerSubject == want.DiscardNewPerSubject &&
		have.MaxMsgsPerSubject == want.MaxMsgsPerSubject &&
		have.Duplicates == want.Duplicates &&
		have.MaxConsumers == want.MaxConsumers &&
		have.Replicas == want.Replicas &&
		have.MaxMsgs == want.MaxMsgs && have.MaxBytes == want.MaxBytes &&
		have.MaxMsgSize == want.MaxMsgSize &&
		have.AllowDirect == want.AllowDirect &&
		have.Metadata[MetaShards] == want.Metadata[MetaShards] &&
		sourcesEqual(have.Sources, want.Sources)
}

// pauseRecords reads every recorded pause, keyed by tenant.
func pauseRecords(ctx context.Context, js jetstream.JetStream, names Names) (map[string]PauseRecord, error) {
	kv, err := js.KeyValue(ctx, names.PausesBucket())
	if err != nil {
		return nil, fmt.Errorf("dispatcher: provision: pauses bucket: %w", err)
	}
	out, err := readPauseRecords(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: provision: read pauses: %w", err)
	}
	return out, nil
}

func checkTenants(ts []tenants.Tenant, maxConsumers int) error {
	perShard := make([]int, JobShards)
	for _, t := range ts {
		if ValidTenantID(t.ID) {
			perShard[ShardOf(t.ID)]++
		}
	}
	if most := slices.Max(perShard); most*len(Priorities()) > maxConsumers {
		return fmt.Errorf("dispatcher: provision: %d tenants in one jobs stream need %d consumers (one per class) but it allows %d (raise MaxConsumers)", most, most*len(Priorities()), maxConsumers)
	}
	var errs []error
	seen := make(map[string]bool, len(ts))
	for _, t := range ts {
		switch {
		case !ValidTenantID(t.ID):
			errs = append(errs, fmt.Errorf("dispatcher: provision: invalid tenant id %q", t.ID))
		case seen[t.ID]:
			errs = append(errs, fmt.Errorf("dispatcher: provision: tenant %s listed twice", t.ID))
		case t.Concurrency < 1:
			errs = append(errs, fmt.Errorf("dispatcher: provision: tenant %s: concurrency %d, want ≥ 1", t.ID, t.Concurrency))
		}
		seen[t.ID] = true
	}
	return errors.Join(errs...)
}

// consumerUpToDate reports whether an existing consumer's configuration has
// every setting ConsumerConfig manages.
func consumerUpToDate(have, want jetstream.ConsumerConfig) bool {
	return have.Durable == want.Durable &&
		have.Description == want.Description &&
		have.FilterSubject == want.FilterSubject && slices.Equal(have.FilterSubjects, want.FilterSubjects) &&
		have.AckPolicy == want.AckPolicy &&
		have.AckWait == want.AckWait &&
		have.MaxDeliver == want.MaxDeliver &&
		have.DeliverPolicy == want.DeliverPolicy &&
		have.MaxAckPending == want.MaxAckPending &&
		have.MemoryStorage == want.MemoryStorage &&
		have.Metadata[MetaMaxBacklog] == want.Metadata[MetaMaxBacklog] &&
		drainMetadataUpToDate(have.Metadata, want.Metadata) &&
		len(have.BackOff) == 0
}

// EnsureConsumer creates tenant t's durable consumer, or updates it to t's
// settings if they changed. An update keeps the consumer's delivery state and
// its pause. It returns the consumer. It uses the default StreamConfig (file
// storage); see EnsureConsumerWith.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, names Names, t tenants.Tenant) (jetstream.Consumer, error) {
	return EnsureConsumerWith(ctx, js, names, StreamConfig{}, t)
}

// EnsureClassConsumer makes sure tenant's consumer of class p exists before
// a job of the class is published, creating it like the tenant's normal
// consumer (its storage, ack wait and metadata, and its pause, if it is
// paused). It needs the right to create consumers; the Publisher calls it
// and goes on without it when refused (a worker replica then creates the
// consumer within seconds of the job's arrival). created says whether it
// created it.
func EnsureClassConsumer(ctx context.Context, js jetstream.JetStream, names Names, tenant string, p Priority) (created bool, err error) {
	if p == PriorityNormal {
		return false, nil
	}
	stream, name := names.JobsStream(tenant), names.PriorityConsumer(tenant, p)
	if _, err := js.Consumer(ctx, stream, name); err == nil {
		return false, nil
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false, fmt.Errorf("dispatcher: %s consumer of tenant %s: %w", p, tenant, err)
	}
	normal, err := js.Consumer(ctx, stream, names.Consumer(tenant))
	if err != nil {
		return false, fmt.Errorf("dispatcher: %s consumer of tenant %s: read its normal consumer: %w", p, tenant, err)
	}
	info := normal.CachedInfo()
	want := info.Config
	want.Name, want.Durable = name, name
	want.Description = "orgdispatch " + string(p) + " jobs of tenant " + tenant
	want.FilterSubject, want.FilterSubjects = "", names.PriorityFilters(tenant, p)
	want.PauseUntil = nil
	want.Metadata = maps.Clone(want.Metadata)
	maps.DeleteFunc(want.Metadata, func(k, _ string) bool { return strings.HasPrefix(k, "_nats.") })
	if info.Paused && info.Config.PauseUntil != nil && info.Config.PauseUntil.After(time.Now()) {
		until := *info.Config.PauseUntil
		want.PauseUntil = &until
	}
	if _, err := js.CreateConsumer(ctx, stream, want); err != nil {
		if errors.Is(err, jetstream.ErrConsumerExists) {
			return false, nil // created meanwhile by another process
		}
		return false, fmt.Errorf("dispatcher: create %s consumer of tenant %s: %w", p, tenant, err)
	}
	return true, nil
}

// EnsureConsumerWith is EnsureConsumer with cfg's consumer settings
// (ConsumerStorage); pass the StreamConfig given to Provision. An existing
// consumer with the other storage is not changed: the error is a
// *ConsumerStorageError.
//
// It ensures the tenant's normal consumer and returns it; its urgent and
// bulk consumers are created when their class has jobs (Provision,
// EnsureClassConsumer).
func EnsureConsumerWith(ctx context.Context, js jetstream.JetStream, names Names, cfg StreamConfig, t tenants.Tenant) (jetstream.Consumer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkTenants([]tenants.Tenant{t}, len(Priorities())); err != nil {
		return nil, err
	}
	want := cfg.ConsumerConfig(names, t)
	if _, err := ensureShard(ctx, js, names, cfg.withDefaults(), ShardOf(t.ID), []tenants.Tenant{t}, 0); err != nil {
		return nil, err
	}
	c, err := js.Consumer(ctx, names.JobsStream(t.ID), want.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		rec, err := pauseRecord(ctx, js, names, t.ID)
		if err != nil {
			return nil, err
		}
		return ensureConsumer(ctx, js, names, t.ID, want, false, rec)
	case err != nil:
		return nil, fmt.Errorf("dispatcher: consumer of tenant %s: %w", t.ID, err)
	}
	info := c.CachedInfo()
	if info.Config.MemoryStorage != want.MemoryStorage {
		return nil, &ConsumerStorageError{Stream: names.JobsStream(t.ID), Consumers: []string{want.Durable}, Want: cfg.ConsumerStorage}
	}
	if consumerUpToDate(info.Config, want) {
		return c, nil
	}
	return ensureConsumer(ctx, js, names, t.ID, want, true, PauseRecord{})
}

// pauseRecord reads tenant's recorded pause; none is the zero record.
func pauseRecord(ctx context.Context, js jetstream.JetStream, names Names, tenant string) (PauseRecord, error) {
	kv, err := js.KeyValue(ctx, names.PausesBucket())
	if err != nil {
		return PauseRecord{}, fmt.Errorf("dispatcher: pauses bucket: %w", err)
	}
	e, err := kv.Get(ctx, tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return PauseRecord{}, nil
	}
	if err != nil {
		return PauseRecord{}, fmt.Errorf("dispatcher: read pause of tenant %s: %w", tenant, err)
	}
	var r PauseRecord
	_ = json.Unmarshal(e.Value(), &r)
	return r, nil
}

// ensureConsumer creates or updates a consumer to want; exists says which.
//
// An update leaves the consumer's pause alone: nats-server (since the pause
// API's introduction in 2.11) takes PauseUntil from a create request only and
// keeps the current pause on every update, so that re-provisioning at start-up
// never resumes a tenant an operator or a 429 paused. Pause and resume go
// through the pause API (Pause, Resume) only.
//
// A consumer created anew — the first time, or again after a nats-server
// restart forgot a memory-storage one — starts paused until rec.Until when
// the tenant's recorded pause has not passed: the pause survives what the
// server forgot, with its reason (still in the pauses bucket).
func ensureConsumer(ctx context.Context, js jetstream.JetStream, names Names, tenant string, want jetstream.ConsumerConfig, exists bool, rec PauseRecord) (jetstream.Consumer, error) {
	if !exists && rec.Until.After(time.Now()) {
		until := rec.Until
		want.PauseUntil = &until
	}
	c, err := js.CreateOrUpdateConsumer(ctx, names.JobsStream(tenant), want)
	if err != nil {
		verb := "create"
		if exists {
			verb = "update"
		}
		return nil, fmt.Errorf("dispatcher: %s consumer %s: %w", verb, want.Durable, err)
	}
	return c, nil
}

// ConsumerStorageError reports tenant consumers whose storage differs from
// the configured StreamConfig.ConsumerStorage. nats-server cannot change a
// consumer's storage ("storage type can not be updated"), so Provision and
// EnsureConsumerWith leave them alone and return this instead. To migrate,
// delete the consumers (RemoveConsumer, or `nats consumer rm`) and provision
// again: the jobs stream keeps their queued jobs and the new consumers
// deliver them, but a pause in progress and delivery counts are lost.
type ConsumerStorageError struct {
	// Stream is the jobs stream.
	Stream string
	// Consumers are the durable names of the consumers with the other
	// storage.
	Consumers []string
	// Want is the configured storage; the consumers have the other one.
	Want jetstream.StorageType
}

// Error names the consumers (the first few of many) and how to migrate.
func (e *ConsumerStorageError) Error() string {
	const shown = 3
	which := strings.Join(e.Consumers[:min(len(e.Consumers), shown)], ", ")
	if n := len(e.Consumers) - shown; n > 0 {
		which += fmt.Sprintf(" and %d more", n)
	}
	noun, pron := "consumer", "it"
	if len(e.Consumers) > 1 {
		noun, pron = "consumers", "them"
	}
	return fmt.Sprintf("dispatcher: %s %s of stream %s: %s storage, but %s storage is configured, and nats-server cannot change a consumer's storage; "+
		"to migrate, delete %s (nats consumer rm %s <consumer>) and provision again: the stream keeps the queued jobs, "+
		"a pause in progress and delivery counts are lost",
		noun, which, e.Stream, storageName(otherStorage(e.Want)), storageName(e.Want), pron, e.Stream)
}

func otherStorage(s jetstream.StorageType) jetstream.StorageType {
	if s == jetstream.MemoryStorage {
		return jetstream.FileStorage
	}
	return jetstream.MemoryStorage
}

func storageName(s jetstream.StorageType) string {
	if s == jetstream.MemoryStorage {
		return "memory"
	}
	return "file"
}

// RemoveConsumer deletes a tenant's consumers (one per class). Its queued jobs stay in the
// stream and are delivered again if the tenant comes back. Removing a
// consumer that does not exist is not an error. See RetireTenant to refuse
// the tenant's new jobs.
func RemoveConsumer(ctx context.Context, js jetstream.JetStream, names Names, tenant string) error {
	if !ValidTenantID(tenant) {
		return fmt.Errorf("dispatcher: remove consumer: invalid tenant id %q", tenant)
	}
	for _, name := range names.TenantConsumers(tenant) {
		err := js.DeleteConsumer(ctx, names.JobsStream(tenant), name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("dispatcher: remove consumer %s of tenant %s: %w", name, tenant, err)
		}
	}
	return nil
}

// RetireTenant takes tenant's subjects off its jobs stream, e.g. when it
// left the tenants file: from then on its new jobs are refused (JetStream
// answers that no stream takes them; the Publisher: *UnknownTenantError),
// while its queued jobs and its consumer stay, to run if it comes back
// (Provision or EnsureConsumerWith put the subjects back).
func RetireTenant(ctx context.Context, js jetstream.JetStream, names Names, tenant string) error {
	if !ValidTenantID(tenant) {
		return fmt.Errorf("dispatcher: retire tenant: invalid tenant id %q", tenant)
	}
	s, err := js.Stream(ctx, names.JobsStream(tenant))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dispatcher: retire tenant %s: %w", tenant, err)
	}
	cfg := s.CachedInfo().Config
	f := names.TenantJobsFilter(tenant)
	i := slices.Index(cfg.Subjects, f)
	if i < 0 {
		return nil
	}
	cfg.Subjects = slices.Delete(cfg.Subjects, i, i+1)
	if len(cfg.Subjects) == 0 {
		// A stream needs a subject: one no producer uses.
		cfg.Subjects = []string{names.prefix + ".retired." + cfg.Name}
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("dispatcher: retire tenant %s: %w", tenant, err)
	}
	return nil
}

// JobsStreams returns the jobs streams that exist (a shard's stream exists
// once a tenant of it was provisioned).
func JobsStreams(ctx context.Context, js jetstream.JetStream, names Names) ([]jetstream.Stream, error) {
	var out []jetstream.Stream
	for i := range JobShards {
		s, err := js.Stream(ctx, names.ShardStream(i))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dispatcher: stream %s: %w", names.ShardStream(i), err)
		}
		out = append(out, s)
	}
	return out, nil
}

// QueuedJobs is how many jobs the jobs streams hold.
func QueuedJobs(ctx context.Context, js jetstream.JetStream, names Names) (uint64, error) {
	streams, err := JobsStreams(ctx, js, names)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, s := range streams {
		n += s.CachedInfo().State.Msgs
	}
	return n, nil
}
