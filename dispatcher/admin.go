package dispatcher

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// Errors the Admin returns for things that do not exist; the HTTP API maps
// them to 404.
var (
	ErrTenantNotFound     = errors.New("tenant not found")
	ErrJobNotFound        = errors.New("job not found")
	ErrDeadLetterNotFound = errors.New("dead letter not found")
)

// StateNoWorkers is a tenant's state when no live worker replica reports a
// lane for it (and it is not paused): its jobs queue up until one starts.
const StateNoWorkers = "no workers"

// Admin defaults; see the AdminOption functions.
const (
	// DefaultReplicaLiveness is how recent a replica's heartbeat must be for
	// its lane figures to count.
	DefaultReplicaLiveness = 10 * time.Second
	// DefaultTenantsCacheTTL is how long Tenants reuses one listing, so that
	// many dashboard viewers polling at 1 Hz cost one listing per second.
	DefaultTenantsCacheTTL = time.Second
	// DefaultDeadLetterBodyLimit caps the body returned with each dead letter.
	DefaultDeadLetterBodyLimit = 4096
	// MaxDeadLetterPage is the most dead letters one DeadLetters call returns.
	MaxDeadLetterPage = 500
)

// TenantStatus is one tenant as operators see it: its consumer's queue
// figures, its pause and why, and its lanes' figures summed over the live
// worker replicas. It never carries credentials.
type TenantStatus struct {
	ID    string `json:"id"`
	State string `json:"state"` // worst lane state, "paused", or StateNoWorkers
	// Paused is the consumer's pause (cluster-wide, server-side).
	Paused               bool      `json:"paused"`
	PausedUntil          time.Time `json:"paused_until,omitzero"`
	PauseRemainingSecond float64   `json:"pause_remaining_seconds,omitempty"`
	PauseReason          string    `json:"pause_reason,omitempty"`
	PausedBy             string    `json:"paused_by,omitempty"`
	Backlog              uint64    `json:"backlog"`     // jobs waiting (NumPending), every class's consumer
	InFlight             int       `json:"in_flight"`   // delivered, not yet acked (NumAckPending), every class's consumer
	Concurrency          int       `json:"concurrency"` // jobs the live replicas may run at once (each lane's concurrency, summed)
	RatePerSec           float64   `json:"rate_per_sec"`
	// RateSources are where the lanes' rates come from (LaneReport.RateSource),
	// each once, sorted.
	RateSources []string  `json:"rate_sources,omitempty"`
	DonePerSec  float64   `json:"done_per_sec"`
	Succeeded   uint64    `json:"succeeded"`
	Retried     uint64    `json:"retried"`
	Dead        uint64    `json:"dead"`
	RateLimited uint64    `json:"rate_limited"` // 429 answers
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Replicas    int       `json:"replicas"` // live replicas running a lane for it
	// TenantDrain: backlog by class, time to drain, saturation (tenantdrain.go).
	TenantDrain
}

// countStreamJobs makes Backlog count the jobs the stream holds for classes
// that have no consumer yet (its urgent or bulk consumer is created with the
// class's first jobs): the classes' counts are the stream's, waiting and in
// flight together.
func (ts *TenantStatus) countStreamJobs() {
	var held uint64
	for _, c := range ts.Classes {
		held += c.Backlog
	}
	if inFlight := uint64(max(ts.InFlight, 0)); held > ts.Backlog+inFlight {
		ts.Backlog = held - inFlight
	}
}

// addCounts adds the figures of the tenant's urgent or bulk consumer to
// Backlog and InFlight (buildStatus counts the normal one's).
func (ts *TenantStatus) addCounts(info *jetstream.ConsumerInfo) {
	ts.Backlog += info.NumPending
	ts.InFlight += info.NumAckPending
}

// DeadLetter is one message of the dead-letter stream: the original job body
// and why it was given up on.
type DeadLetter struct {
	Seq           uint64    `json:"seq"`
	Subject       string    `json:"subject"`
	Tenant        string    `json:"tenant"`
	Op            string    `json:"op"`
	JobID         string    `json:"job_id"`
	ErrorClass    string    `json:"error_class,omitempty"`
	Error         string    `json:"error,omitempty"`
	HTTPStatus    int       `json:"http_status,omitempty"`
	Attempts      int       `json:"attempts,omitempty"`
	FirstAttempt  time.Time `json:"first_attempt,omitzero"`
	LastAttempt   time.Time `json:"last_attempt,omitzero"`
	DeadAt        time.Time `json:"dead_at"` // when it was stored in the dead-letter stream
	Body          string    `json:"body"`    // the original job, cut to the body limit
	BodyBytes     int       `json:"body_bytes"`
	BodyTruncated bool      `json:"body_truncated,omitempty"`
}

// ReplayResult says where a replayed dead letter went.
type ReplayResult struct {
	Seq       uint64 `json:"seq"` // the dead letter's sequence (now deleted)
	Tenant    string `json:"tenant"`
	Op        string `json:"op"`
	JobID     string `json:"job_id"`
	MsgID     string `json:"msg_id"`    // the new Nats-Msg-Id
	JobSeq    uint64 `json:"job_seq"`   // the sequence in the jobs stream
	Duplicate bool   `json:"duplicate"` // this replay had already been published
}

// Admin is the NATS side of operating orgdispatch: tenant status, pause and
// resume, job lookup, and the dead letters. Any process connected to NATS
// can use it; no worker needs to run in it. It is safe for concurrent use.
type Admin struct {
	js        jetstream.JetStream
	names     Names
	now       func() time.Time
	liveness  time.Duration
	cacheTTL  time.Duration
	bodyLimit int

	listMu sync.Mutex // held during a tenants listing, so concurrent callers share one

	mu       sync.Mutex // guards the fields below
	cached   []TenantStatus
	cachedAt time.Time
	known    map[string]bool
	dlq      jetstream.Stream
	status   jetstream.KeyValue
	replicas jetstream.KeyValue
	lanes    jetstream.KeyValue
	pauses   jetstream.KeyValue
	shards   map[string]jetstream.Stream // jobs streams by name, once found (admindrain.go)
}

// AdminOption adjusts an Admin.
type AdminOption func(*Admin)

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) AdminOption { return func(a *Admin) { a.now = now } }

// WithReplicaLiveness sets how recent a heartbeat must be to count
// (default DefaultReplicaLiveness).
func WithReplicaLiveness(d time.Duration) AdminOption { return func(a *Admin) { a.liveness = d } }

// WithTenantsCacheTTL sets how long Tenants reuses a listing
// (default DefaultTenantsCacheTTL; 0 turns the cache off).
func WithTenantsCacheTTL(d time.Duration) AdminOption { return func(a *Admin) { a.cacheTTL = d } }

// WithDeadLetterBodyLimit caps each dead letter's returned body
// (default DefaultDeadLetterBodyLimit bytes).
func WithDeadLetterBodyLimit(n int) AdminOption { return func(a *Admin) { a.bodyLimit = n } }

// NewAdmin returns an Admin for the streams and buckets named by names.
func NewAdmin(js jetstream.JetStream, names Names, opts ...AdminOption) *Admin {
	a := &Admin{
		js:        js,
		names:     names,
		now:       time.Now,
		liveness:  DefaultReplicaLiveness,
		cacheTTL:  DefaultTenantsCacheTTL,
		bodyLimit: DefaultDeadLetterBodyLimit,
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Names returns the names the Admin was built with.
func (a *Admin) Names() Names { return a.names }

func (a *Admin) dlqStream(ctx context.Context) (jetstream.Stream, error) {
	a.mu.Lock()
	s := a.dlq
	a.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := a.js.Stream(ctx, a.names.DLQStream())
	if err != nil {
		return nil, fmt.Errorf("admin: stream %s: %w", a.names.DLQStream(), err)
	}
	a.mu.Lock()
	a.dlq = s
	a.mu.Unlock()
	return s, nil
}

func (a *Admin) bucket(ctx context.Context, slot *jetstream.KeyValue, name string) (jetstream.KeyValue, error) {
	a.mu.Lock()
	kv := *slot
	a.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := a.js.KeyValue(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("admin: bucket %s: %w", name, err)
	}
	a.mu.Lock()
	*slot = kv
	a.mu.Unlock()
	return kv, nil
}

// Ready reports whether the streams and buckets the Admin reads exist. It
// asks NATS every time (it is a readiness probe).
func (a *Admin) Ready(ctx context.Context) error {
	// The jobs streams exist only for shards with tenants; the dead-letter
	// stream is provisioned with them.
	for _, name := range []string{a.names.DLQStream(), a.names.SchedulesStream()} {
		if _, err := a.js.Stream(ctx, name); err != nil {
			return fmt.Errorf("admin: stream %s: %w", name, err)
		}
	}
	for _, name := range []string{a.names.StatusBucket(), a.names.ReplicasBucket(), a.names.LanesBucket(), a.names.PausesBucket()} {
		if _, err := a.js.KeyValue(ctx, name); err != nil {
			return fmt.Errorf("admin: bucket %s: %w", name, err)
		}
	}
	return nil
}

// Tenants lists every tenant (every tenant consumer of the jobs stream),
// sorted by id. It costs one paged consumer listing, one info request per
// jobs stream (with its per-subject counts: the backlog by class), one read
// of each of the pauses and replicas buckets and one read per page of lane
// figures, and reuses the result for the cache TTL.
func (a *Admin) Tenants(ctx context.Context) ([]TenantStatus, error) {
	a.listMu.Lock()
	defer a.listMu.Unlock()
	if list, ok := a.fromCache(); ok {
		return list, nil
	}
	list, err := a.listTenants(ctx)
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool, len(list))
	for _, t := range list {
		known[t.ID] = true
	}
	a.mu.Lock()
	a.cached, a.cachedAt, a.known = list, a.now(), known
	a.mu.Unlock()
	return slices.Clone(list), nil
}

func (a *Admin) fromCache() ([]TenantStatus, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cached == nil || a.cacheTTL <= 0 {
		return nil, false
	}
	if age := a.now().Sub(a.cachedAt); age < 0 || age >= a.cacheTTL {
		return nil, false
	}
	return slices.Clone(a.cached), true
}

// invalidate drops the cached listing (after a change this process made).
func (a *Admin) invalidate() {
	a.mu.Lock()
	a.cached = nil
	a.mu.Unlock()
}

func (a *Admin) listTenants(ctx context.Context) ([]TenantStatus, error) {
	pauses, err := a.readPauses(ctx)
	if err != nil {
		return nil, err
	}
	lanes, err := a.readLanes(ctx)
	if err != nil {
		return nil, err
	}
	now := a.now()
	streams, classes, err := a.jobsStreamsWithClasses(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	var out []TenantStatus
	for _, st := range streams {
		name := st.CachedInfo().Config.Name
		lister := st.ListConsumers(ctx)
		others := map[string][]*jetstream.ConsumerInfo{} // urgent and bulk consumers, by tenant
		first := len(out)
		for info := range lister.Info() {
			id, p, ok := a.names.TenantOfClassConsumer(info.Name)
			switch {
			case !ok:
				continue
			case p != PriorityNormal:
				others[id] = append(others[id], info)
				continue
			}
			rec, hasRec := pauses[id]
			ts := buildStatus(id, info, lanes[id], recPtr(rec, hasRec), now)
			ts.TenantDrain = tenantDrainOf(info, lanes[id], classes[id], now)
			out = append(out, ts)
		}
		if err := lister.Err(); err != nil {
			return nil, fmt.Errorf("admin: list consumers of %s: %w", name, err)
		}
		for i := first; i < len(out); i++ {
			for _, info := range others[out[i].ID] {
				out[i].addCounts(info)
			}
			out[i].countStreamJobs()
		}
	}
	slices.SortFunc(out, func(x, y TenantStatus) int { return cmp.Compare(x.ID, y.ID) })
	if out == nil {
		out = []TenantStatus{}
	}
	return out, nil
}

// recordMatches reports whether rec is the record of the pause lasting until
// until (within a second).
func recordMatches(rec *PauseRecord, until time.Time) bool {
	if rec == nil {
		return false
	}
	d := rec.Until.Sub(until)
	return d <= time.Second && d >= -time.Second
}

func recPtr(r PauseRecord, ok bool) *PauseRecord {
	if !ok {
		return nil
	}
	return &r
}

// Tenant returns one tenant's status, read fresh (not from the cache).
func (a *Admin) Tenant(ctx context.Context, id string) (TenantStatus, error) {
	if !ValidTenantID(id) {
		return TenantStatus{}, fmt.Errorf("admin: tenant %q: %w", id, ErrTenantNotFound)
	}
	info, err := a.consumerInfo(ctx, id)
	if err != nil {
		return TenantStatus{}, err
	}
	kv, err := a.bucket(ctx, &a.pauses, a.names.PausesBucket())
	if err != nil {
		return TenantStatus{}, err
	}
	var rec *PauseRecord
	if e, err := kv.Get(ctx, id); err == nil {
		var r PauseRecord
		if json.Unmarshal(e.Value(), &r) == nil {
			rec = &r
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return TenantStatus{}, fmt.Errorf("admin: tenant %s: read pause record: %w", id, err)
	}
	lanes, err := a.readLanes(ctx)
	if err != nil {
		return TenantStatus{}, err
	}
	classes, err := a.tenantClasses(ctx, id)
	if err != nil {
		return TenantStatus{}, err
	}
	now := a.now()
	ts := buildStatus(id, info, lanes[id], rec, now)
	ts.TenantDrain = tenantDrainOf(info, lanes[id], classes, now)
	for _, p := range []Priority{PriorityUrgent, PriorityBulk} {
		c, err := a.js.Consumer(ctx, a.names.JobsStream(id), a.names.PriorityConsumer(id, p))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue // provisioned before classes existed
		}
		if err != nil {
			return TenantStatus{}, fmt.Errorf("admin: tenant %s: %s consumer info: %w", id, p, err)
		}
		ts.addCounts(c.CachedInfo())
	}
	ts.countStreamJobs()
	return ts, nil
}

func (a *Admin) consumerInfo(ctx context.Context, id string) (*jetstream.ConsumerInfo, error) {
	if !ValidTenantID(id) {
		return nil, fmt.Errorf("admin: tenant %q: %w", id, ErrTenantNotFound)
	}
	c, err := a.js.Consumer(ctx, a.names.JobsStream(id), a.names.Consumer(id))
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("admin: tenant %s: %w", id, ErrTenantNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("admin: tenant %s: consumer info: %w", id, err)
	}
	return c.CachedInfo(), nil
}

// TenantExists reports whether the tenant has a consumer. It answers from
// the last listing when the tenant was in it, and asks NATS otherwise, so a
// tenant added a moment ago is found at once.
func (a *Admin) TenantExists(ctx context.Context, id string) (bool, error) {
	if !ValidTenantID(id) {
		return false, nil
	}
	a.mu.Lock()
	known := a.known[id]
	a.mu.Unlock()
	if known {
		return true, nil
	}
	_, err := a.consumerInfo(ctx, id)
	if errors.Is(err, ErrTenantNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	if a.known == nil {
		a.known = map[string]bool{}
	}
	a.known[id] = true
	a.mu.Unlock()
	return true, nil
}

// laneState ranks lane states: a tenant's state is the worst of its lanes'.
func laneState(s string) int {
	switch s {
	case LaneCredentialsRejected:
		return 5
	case LaneTokenUnavailable:
		return 4
	case LanePaused:
		return 3
	case LaneRunning:
		return 2
	case LaneStopped:
		return 1
	}
	return 0
}

func buildStatus(id string, info *jetstream.ConsumerInfo, lanes []LaneReport, rec *PauseRecord, now time.Time) TenantStatus {
	ts := TenantStatus{ID: id, Backlog: info.NumPending, InFlight: info.NumAckPending, Replicas: len(lanes)}
	if info.Paused && info.Config.PauseUntil != nil && info.Config.PauseUntil.After(now) {
		ts.Paused = true
		ts.PausedUntil = info.Config.PauseUntil.UTC()
		ts.PauseRemainingSecond = info.Config.PauseUntil.Sub(now).Seconds()
		// A record whose deadline differs is of an earlier pause: this one
		// was set some other way (e.g. nats consumer pause).
		if recordMatches(rec, *info.Config.PauseUntil) {
			ts.PauseReason, ts.PausedBy = rec.Reason, rec.By
		}
	}
	worst := ""
	for _, l := range lanes {
		ts.Concurrency += l.Concurrency
		ts.RatePerSec += l.RatePerSec
		if l.RateSource != "" && !slices.Contains(ts.RateSources, l.RateSource) {
			ts.RateSources = append(ts.RateSources, l.RateSource)
		}
		ts.DonePerSec += l.DonePerSec
		ts.Succeeded += l.Succeeded
		ts.Retried += l.Retried
		ts.Dead += l.Dead
		ts.RateLimited += l.RateLimited
		if l.LastError != "" && (ts.LastError == "" || l.LastErrorAt.After(ts.LastErrorAt)) {
			ts.LastError, ts.LastErrorAt = l.LastError, l.LastErrorAt.UTC()
		}
		if worst == "" || laneState(l.State) > laneState(worst) {
			worst = l.State
		}
	}
	slices.Sort(ts.RateSources)
	switch {
	case ts.Paused && laneState(worst) < laneState(LanePaused):
		ts.State = LanePaused
	case worst == "":
		ts.State = StateNoWorkers
	default:
		ts.State = worst
	}
	return ts
}

// readKVSettle is how long readKV waits for the next entry, once the
// watcher has reported the end of the current values without every key,
// before it takes what it has.
const readKVSettle = time.Second

// readKV returns the current value of every key of a bucket, read with one
// watcher (an ordered consumer), not one request per key.
//
// The watcher's end-of-values marker is not enough: it counts a key written
// again while it delivers as one of the values it expects, so with keys
// rewritten all the time (heartbeats) it can come before the last keys
// (whose new values are on their way). So after the marker readKV asks how
// many keys the bucket holds (with a history of 1, its messages) and reads
// on until it has seen as many, or none arrives for readKVSettle (a key may
// expire meanwhile). Deletes are read too, not skipped by the watcher, so
// that every key is counted.
func readKV(ctx context.Context, kv jetstream.KeyValue) (map[string]jetstream.KeyValueEntry, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	defer stopWatcher(w)
	out := map[string]jetstream.KeyValueEntry{}
	seen := map[string]bool{}
	var want uint64
	var settle *time.Timer
	var settled <-chan time.Time
	defer func() {
		if settle != nil {
			settle.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-settled:
			return out, nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watcher closed")
			}
			if e == nil { // the watcher's end of the current values
				st, err := kv.Status(ctx)
				if err != nil {
					return nil, err
				}
				want = st.Values()
				if uint64(len(seen)) >= want {
					return out, nil
				}
				settle = time.NewTimer(readKVSettle)
				settled = settle.C
				continue
			}
			seen[e.Key()] = true
			if e.Operation() == jetstream.KeyValuePut {
				out[e.Key()] = e
			} else {
				delete(out, e.Key())
			}
			if settle != nil {
				if uint64(len(seen)) >= want {
					return out, nil
				}
				settle.Reset(readKVSettle)
			}
		}
	}
}

// stopWatcher stops a KV watcher and drains it until it closes: the
// watcher hands each update over under its lock and closes only once it
// can take the lock, so one stopped while updates still arrive (a bucket
// rewritten all the time) would otherwise leave its goroutine blocked for
// ever.
func stopWatcher(w jetstream.KeyWatcher) {
	_ = w.Stop()
	go func() {
		for range w.Updates() {
		}
	}()
}

func (a *Admin) readPauses(ctx context.Context) (map[string]PauseRecord, error) {
	kv, err := a.bucket(ctx, &a.pauses, a.names.PausesBucket())
	if err != nil {
		return nil, err
	}
	out, err := readPauseRecords(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("admin: read bucket %s: %w", a.names.PausesBucket(), err)
	}
	return out, nil
}

// readPauseRecords reads every record of the pauses bucket kv, keyed by
// tenant; an undecodable one is left out.
func readPauseRecords(ctx context.Context, kv jetstream.KeyValue) (map[string]PauseRecord, error) {
	vals, err := readKV(ctx, kv)
	if err != nil {
		return nil, err
	}
	out := make(map[string]PauseRecord, len(vals))
	for k, e := range vals {
		var r PauseRecord
		if json.Unmarshal(e.Value(), &r) == nil {
			out[k] = r
		}
	}
	return out, nil
}

// Lanes returns the lane figures of every live worker replica (heard from
// within the liveness window), by tenant: one LaneReport per replica
// running a lane for it. It costs one read of the replicas bucket and one
// read per page of lane figures (a page holds the figures of some 70 to 450
// lanes).
func (a *Admin) Lanes(ctx context.Context) (map[string][]LaneReport, error) {
	return a.readLanes(ctx)
}

// readLanes reads the live replicas from the replicas bucket and their lane
// figures from the lanes bucket.
func (a *Admin) readLanes(ctx context.Context) (map[string][]LaneReport, error) {
	kv, err := a.bucket(ctx, &a.replicas, a.names.ReplicasBucket())
	if err != nil {
		return nil, err
	}
	vals, err := readKV(ctx, kv)
	if err != nil {
		return nil, fmt.Errorf("admin: read bucket %s: %w", a.names.ReplicasBucket(), err)
	}
	now := a.now()
	live := map[string]Heartbeat{}
	for _, e := range vals {
		// Liveness is judged by when the server stored the heartbeat, not
		// by the replica's own clock in it.
		var hb Heartbeat
		if json.Unmarshal(e.Value(), &hb) != nil || now.Sub(e.Created()) > a.liveness {
			continue
		}
		live[e.Key()] = hb
	}
	out := map[string][]LaneReport{}
	var keys []string
	for replica, hb := range live {
		// A replica of an earlier version wrote its lanes into its heartbeat.
		for _, l := range hb.Lanes {
			out[l.Tenant] = append(out[l.Tenant], l)
		}
		for i := range hb.Pages {
			keys = append(keys, LanePageKey(replica, i))
		}
	}
	if len(keys) == 0 {
		return out, nil
	}
	lkv, err := a.bucket(ctx, &a.lanes, a.names.LanesBucket())
	if err != nil {
		return nil, err
	}
	pages, err := getKeys(ctx, lkv, keys)
	if err != nil {
		return nil, fmt.Errorf("admin: read bucket %s: %w", a.names.LanesBucket(), err)
	}
	for tenant, ls := range mergePages(live, pages) {
		out[tenant] = append(out[tenant], ls...)
	}
	return out, nil
}

// pageReads bounds the page reads readLanes has in flight.
const pageReads = 16

// getKeys reads the current value of each key (a missing key is left out),
// a few at a time. The pages are read one by one, not with a watcher: a
// watcher counts a page rewritten while it delivers as one of the values it
// expects, and reports the end of the current values before the last ones
// arrive.
func getKeys(ctx context.Context, kv jetstream.KeyValue, keys []string) ([]jetstream.KeyValueEntry, error) {
	out := make([]jetstream.KeyValueEntry, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pageReads)
	for i, key := range keys {
		g.Go(func() error {
			e, err := kv.Get(gctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			case err != nil:
				return fmt.Errorf("%s: %w", key, err)
			default:
				out[i] = e
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(e jetstream.KeyValueEntry) bool { return e == nil }), nil
}

// mergePages collects the live replicas' lane reports from their current
// pages, by tenant. A tenant in two pages of one replica counts once, from
// the page written last.
func mergePages(live map[string]Heartbeat, pages []jetstream.KeyValueEntry) map[string][]LaneReport {
	type seen struct {
		report LaneReport
		at     time.Time
	}
	byReplica := map[string]map[string]seen{}
	for _, e := range pages {
		var pg LanePage
		if json.Unmarshal(e.Value(), &pg) != nil {
			continue
		}
		hb, ok := live[pg.Replica]
		if !ok || pg.Page < 0 || pg.Page >= hb.Pages || e.Key() != LanePageKey(pg.Replica, pg.Page) {
			continue
		}
		lanes := byReplica[pg.Replica]
		if lanes == nil {
			lanes = map[string]seen{}
			byReplica[pg.Replica] = lanes
		}
		for _, l := range pg.Lanes {
			if prev, dup := lanes[l.Tenant]; dup && !pg.At.After(prev.at) {
				continue
			}
			lanes[l.Tenant] = seen{l, pg.At}
		}
	}
	out := map[string][]LaneReport{}
	for _, lanes := range byReplica {
		for tenant, s := range lanes {
			out[tenant] = append(out[tenant], s.report)
		}
	}
	return out
}

// Pause pauses a tenant cluster-wide for d, recording reason and "api" as
// who paused it.
func (a *Admin) Pause(ctx context.Context, id string, d time.Duration, reason string) (TenantStatus, error) {
	if d <= 0 {
		return TenantStatus{}, fmt.Errorf("admin: pause %s: duration must be positive, got %s", id, d)
	}
	if _, err := a.consumerInfo(ctx, id); err != nil {
		return TenantStatus{}, err
	}
	if err := Pause(ctx, a.js, a.names, id, a.now().Add(d), reason, "api"); err != nil {
		return TenantStatus{}, fmt.Errorf("admin: pause %s: %w", id, err)
	}
	a.invalidate()
	return a.Tenant(ctx, id)
}

// Resume lifts a tenant's pause at once.
func (a *Admin) Resume(ctx context.Context, id string) (TenantStatus, error) {
	if _, err := a.consumerInfo(ctx, id); err != nil {
		return TenantStatus{}, err
	}
	if err := Resume(ctx, a.js, a.names, id); err != nil {
		return TenantStatus{}, fmt.Errorf("admin: resume %s: %w", id, err)
	}
	a.invalidate()
	return a.Tenant(ctx, id)
}

// validJobID reports whether id can be a job id (and so contains no
// subject wildcard).
func validJobID(id string) bool { return jobIDRE.MatchString(id) }

// Job returns the status records of every tenant's job with this id (job
// ids are the callers' keys, unique per tenant only), sorted by tenant.
func (a *Admin) Job(ctx context.Context, id string) ([]JobStatus, error) {
	if !validJobID(id) {
		return nil, fmt.Errorf("admin: job %q: %w", id, ErrJobNotFound)
	}
	kv, err := a.bucket(ctx, &a.status, a.names.StatusBucket())
	if err != nil {
		return nil, err
	}
	w, err := kv.Watch(ctx, "*."+id, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("admin: job %s: watch status: %w", id, err)
	}
	defer func() { _ = w.Stop() }()
	var out []JobStatus
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("admin: job %s: status watcher closed", id)
			}
			if e == nil {
				done = true
				break
			}
			var st JobStatus
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				return nil, fmt.Errorf("admin: job %s: decode status %s: %w", id, e.Key(), err)
			}
			out = append(out, st)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("admin: job %s: %w", id, ErrJobNotFound)
	}
	slices.SortFunc(out, func(x, y JobStatus) int { return cmp.Compare(x.Tenant, y.Tenant) })
	return out, nil
}
