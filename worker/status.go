package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/condlog"
)

// statusBatch caps how many records one round of the writer sends before it
// waits for their acks.
const statusBatch = 256

// statusLinger is how long the writer lets updates gather after a busy round.
const statusLinger = 10 * time.Millisecond

// statusGather is how long a queued put may wait for a later put of the same
// record before it is sent: a job that finishes within it has its running
// record replaced by its outcome before either is written, so most jobs
// cost the status bucket one write, not two (with 1,000 tenants those
// writes are much of the server's work). Synchronous updates never wait.
const statusGather = 100 * time.Millisecond

// statusTimeout bounds one status write or read.
const statusTimeout = 5 * time.Second

// condStatusWrite is the condlog condition of a tenant's status records
// that cannot be written.
const condStatusWrite = "write job status failed"

// statusWriter keeps one tenant's records in the status bucket (key
// <tenant>.<job id>) up to date without putting it on the jobs' path. Every
// lane has its own (see lane.startStatus): one tenant's burst of records,
// hand-backs or retries queues behind nothing of another's, and a slow write
// delays only its own tenant.
//
// Ordinary updates (running, retrying, succeeded, dead) are queued and
// coalesced by key: a job that starts and finishes between two rounds is
// written once, as succeeded. One goroutine sends each round with
// PublishAsync to the bucket's subject ($KV.<bucket>.<key>, what kv.Put
// publishes to) and waits for the acks before the next round, so the records
// of one key are written in order and a round costs one round trip, not one
// per job.
//
// Counting a free delivery (a hand-back) cannot wait: the Nak that follows
// relies on it. The writer runs it synchronously between rounds: the key's
// queued update is dropped (the new record supersedes it), the record is
// read, its FreeDeliveries incremented and written with a compare-and-set on
// the revision read, and only then is the caller released. A retry's record
// is written the same way, so that no queued write of this delivery can land
// after the next delivery's.
//
// Synchronous writes never replace a newer record: each record names the
// delivery that wrote it (JobStatus.Seq, Delivery), and a write for an older
// delivery than the record's is dropped. A caller that stops waiting while
// its write is still queued withdraws it (it never lands); once the write is
// being sent, the caller waits for its outcome, which the writer bounds by
// timeout. A write sent but not confirmed cannot land over the next
// delivery's record either: it went out on this connection before the Nak
// that allows the next delivery, and the server handles one connection's
// messages in order; and it fails its compare-and-set if anything was
// written since its read.
type statusWriter struct {
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	prefix  string // "$KV.<bucket>."
	tenant  string
	log     *slog.Logger
	cond    *condlog.Logger
	timeout time.Duration // bounds one write or read; statusTimeout

	mu       sync.Mutex
	pending  map[string]dispatcher.JobStatus
	order    []string
	syncs    []*syncUpdate
	wake     chan struct{}
	syncWake chan struct{} // cuts a linger short
	oldest   time.Time     // when the oldest queued put was queued

	testHookSync func(ctx context.Context) // tests: runs before each synchronous write
}

// syncUpdate is a read-modify-write of one record that a caller waits for.
// update returns the new record, and false when nothing is to be written.
type syncUpdate struct {
	key    string
	update func(cur dispatcher.JobStatus, found bool) (dispatcher.JobStatus, bool)
	done   chan error
}

// newStatusWriter returns tenant's writer; cond (nil: a discarding one)
// receives its write failures, one line per condition.
func newStatusWriter(js jetstream.JetStream, kv jetstream.KeyValue, bucket, tenant string, log *slog.Logger, cond *condlog.Logger) *statusWriter {
	if cond == nil {
		cond = condlog.New(condlog.Config{})
	}
	return &statusWriter{
		js: js, kv: kv, prefix: "$KV." + bucket + ".", tenant: tenant, log: log, cond: cond,
		timeout:  statusTimeout,
		pending:  map[string]dispatcher.JobStatus{},
		wake:     make(chan struct{}, 1),
		syncWake: make(chan struct{}, 1),
	}
}

// supersedes reports whether record cur was written by a later delivery
// than st's: another stream message of the same job id (republished after
// it finished), or a later delivery of the same message. Records that name
// no delivery (queued, or written before these fields) supersede nothing.
//
// A record of another stream (the job was moved by the upgrade) supersedes
// nothing, and one of another incarnation of the consumer (created again
// after a server restart forgot it) supersedes only when it is of the later
// one: their delivery counts started afresh.
func supersedes(cur, st dispatcher.JobStatus) bool {
	if cur.Seq == 0 || st.Seq == 0 {
		return false
	}
	if cur.Stream != st.Stream {
		return false
	}
	if !cur.Consumer.Equal(st.Consumer) {
		return !cur.Consumer.IsZero() && !st.Consumer.IsZero() && cur.Consumer.After(st.Consumer)
	}
	if cur.Seq != st.Seq {
		return cur.Seq > st.Seq
	}
	return cur.Delivery > st.Delivery
}

// put queues st to be written soon; a later put of the same key replaces it.
func (w *statusWriter) put(st dispatcher.JobStatus) {
	key := dispatcher.StatusKey(st.Tenant, st.ID)
	w.mu.Lock()
	if len(w.order) == 0 {
		w.oldest = time.Now()
	}
	if _, queued := w.pending[key]; !queued {
		w.order = append(w.order, key)
	}
	w.pending[key] = st
	w.mu.Unlock()
	w.signal()
}

// update runs a read-modify-write of key's record through the writer and
// waits until it is stored, or not needed (fn returned false), or failed;
// or until ctx is done while it is still queued (it is then withdrawn).
func (w *statusWriter) update(ctx context.Context, key string, fn func(cur dispatcher.JobStatus, found bool) (dispatcher.JobStatus, bool)) error {
	return w.sync(ctx, &syncUpdate{key: key, update: fn, done: make(chan error, 1)})
}

// putSync writes st through the writer, in order with what is queued for
// its key, and waits as update does; a record of a later delivery is kept.
// The retry path uses it: the next delivery may run on another replica at
// once, and a late queued write from here must not land on top of what that
// replica records.
func (w *statusWriter) putSync(ctx context.Context, st dispatcher.JobStatus) error {
	return w.update(ctx, dispatcher.StatusKey(st.Tenant, st.ID), func(cur dispatcher.JobStatus, found bool) (dispatcher.JobStatus, bool) {
		return st, !found || !supersedes(cur, st)
	})
}

func (w *statusWriter) sync(ctx context.Context, u *syncUpdate) error {
	key := u.key
	w.mu.Lock()
	w.syncs = append(w.syncs, u)
	w.mu.Unlock()
	w.signal()
	select {
	case w.syncWake <- struct{}{}:
	default:
	}
	select {
	case err := <-u.done:
		return err
	case <-ctx.Done():
		// A write the caller no longer waits for must not land later, on
		// top of the next delivery's record: withdraw it while it is
		// queued. Once it is being sent, its outcome is what counts: wait
		// for it (the writer bounds it by w.timeout).
		w.mu.Lock()
		if i := slices.Index(w.syncs, u); i >= 0 {
			w.syncs = slices.Delete(w.syncs, i, i+1)
			w.mu.Unlock()
			return fmt.Errorf("status %s: %w", key, context.Cause(ctx))
		}
		w.mu.Unlock()
		return <-u.done
	}
}

// get reads key's record; found is false when there is none.
func (w *statusWriter) get(ctx context.Context, key string) (st dispatcher.JobStatus, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	e, err := w.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("status %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return st, false, fmt.Errorf("status %s: decode: %w", key, err)
	}
	return st, true, nil
}

func (w *statusWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run writes until ctx is done, then flushes what is queued within flush.
// After a round that wrote something it lingers a moment (unless a
// synchronous update waits), so that under load the records of a job that
// starts and finishes within the linger coalesce into one write.
func (w *statusWriter) run(ctx context.Context, flush time.Duration) {
	linger := time.NewTimer(0)
	<-linger.C
	for {
		select {
		case <-w.wake:
			if d := w.gatherFor(); d > 0 {
				linger.Reset(d)
				select {
				case <-linger.C:
				case <-w.syncWake:
					linger.Stop()
				case <-ctx.Done():
					linger.Stop()
				}
			}
			if w.round(ctx) {
				linger.Reset(statusLinger)
				select {
				case <-linger.C:
				case <-w.syncWake:
					linger.Stop()
				case <-ctx.Done():
					linger.Stop()
				}
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flush)
			for w.round(fctx) {
			}
			cancel()
			w.failSyncs(errors.New("status writer stopped"))
			return
		}
	}
}

// gatherFor is how much longer the queued puts may gather (statusGather);
// 0 when a synchronous update waits or nothing is queued.
func (w *statusWriter) gatherFor() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.syncs) > 0 || len(w.order) == 0 {
		return 0
	}
	return statusGather - time.Since(w.oldest)
}

// round runs the queued synchronous updates, then one batch of queued puts.
// It reports whether it did anything.
func (w *statusWriter) round(ctx context.Context) bool {
	w.mu.Lock()
	syncs := w.syncs
	w.syncs = nil
	for _, u := range syncs {
		if _, queued := w.pending[u.key]; queued {
			delete(w.pending, u.key)
		}
	}
	n := min(len(w.order), statusBatch)
	keys := w.order[:n]
	w.order = w.order[n:]
	w.oldest = time.Time{} // what is left goes in the next rounds at once
	batch := make([]dispatcher.JobStatus, 0, n)
	for _, k := range keys {
		if st, ok := w.pending[k]; ok {
			batch = append(batch, st)
			delete(w.pending, k)
		}
	}
	more := len(w.order) > 0 || len(w.syncs) > 0
	w.mu.Unlock()

	for _, u := range syncs {
		u.done <- w.readModifyWrite(ctx, u)
	}
	w.writeBatch(ctx, batch)
	if more {
		w.signal()
	}
	return len(syncs) > 0 || len(batch) > 0
}

func (w *statusWriter) readModifyWrite(ctx context.Context, u *syncUpdate) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	if w.testHookSync != nil {
		w.testHookSync(ctx)
	}
	for try := 0; ; try++ {
		var cur dispatcher.JobStatus
		var rev uint64
		e, err := w.kv.Get(ctx, u.key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("status %s: read: %w", u.key, err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &cur); err != nil {
				// A record we cannot read is replaced, not kept.
				w.log.Warn("status record unreadable, replacing it", "key", u.key, "error", err)
				cur = dispatcher.JobStatus{}
			}
		}
		st, write := u.update(cur, rev != 0)
		if !write {
			return nil
		}
		data, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("status %s: encode: %w", u.key, err)
		}
		if rev == 0 {
			_, err = w.kv.Create(ctx, u.key, data)
		} else {
			_, err = w.kv.Update(ctx, u.key, data, rev)
		}
		if err == nil {
			return nil
		}
		if try >= 2 || !isWrongRevision(err) {
			return fmt.Errorf("status %s: write: %w", u.key, err)
		}
	}
}

// isWrongRevision reports a lost compare-and-set: someone wrote the record
// between our read and our write.
func isWrongRevision(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

func (w *statusWriter) writeBatch(ctx context.Context, batch []dispatcher.JobStatus) {
	if len(batch) == 0 {
		return
	}
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	failed := 0
	for _, st := range batch {
		data, err := json.Marshal(st)
		if err != nil {
			w.log.Error("encode job status", "tenant", st.Tenant, "job_id", st.ID, "error", err)
			continue
		}
		f, err := w.js.PublishAsync(w.prefix+dispatcher.StatusKey(st.Tenant, st.ID), data)
		if err != nil {
			failed++
			w.failed("job_id", st.ID, "status", st.State, "error", err)
			continue
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(w.timeout)
	defer timeout.Stop()
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			failed++
			w.failed("key", f.Msg().Subject[len(w.prefix):], "error", err)
		case <-timeout.C:
			w.failed("error", "no ack in time", "pending", len(futures)-i)
			return
		case <-ctx.Done():
			return
		}
	}
	if failed == 0 {
		w.cond.Clear(w.tenant, condStatusWrite)
	}
}

// failed reports a write that failed: one line per condition, not per job.
func (w *statusWriter) failed(attrs ...any) {
	w.cond.Report(slog.LevelWarn, w.tenant, condStatusWrite, attrs...)
}

func (w *statusWriter) failSyncs(err error) {
	w.mu.Lock()
	syncs := w.syncs
	w.syncs = nil
	w.mu.Unlock()
	for _, u := range syncs {
		u.done <- err
	}
}
