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
)

// statusBatch caps how many records one round of the writer sends before it
// waits for their acks.
const statusBatch = 256

// statusLinger is how long the writer lets updates gather after a busy round.
const statusLinger = 10 * time.Millisecond

// statusTimeout bounds one status write or read.
const statusTimeout = 5 * time.Second

// statusWriter keeps the status bucket (key <tenant>.<job id>) up to date
// without putting it on the jobs' path.
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
// read, its FreeDeliveries incremented and written with a compare-and-set,
// and only then is the caller released. A retry's record is written the same
// way (without the read), so that no queued write of this delivery can land
// after the next delivery's.
type statusWriter struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	prefix string // "$KV.<bucket>."
	log    *slog.Logger

	mu       sync.Mutex
	pending  map[string]dispatcher.JobStatus
	order    []string
	syncs    []*syncUpdate
	wake     chan struct{}
	syncWake chan struct{} // cuts a linger short
}

// syncUpdate is a write of one record that a caller waits for: a
// read-modify-write when update is set, else a put of st.
type syncUpdate struct {
	key    string
	update func(cur dispatcher.JobStatus, found bool) dispatcher.JobStatus
	st     dispatcher.JobStatus
	done   chan error
}

func newStatusWriter(js jetstream.JetStream, kv jetstream.KeyValue, bucket string, log *slog.Logger) *statusWriter {
	return &statusWriter{
		js: js, kv: kv, prefix: "$KV." + bucket + ".", log: log,
		pending:  map[string]dispatcher.JobStatus{},
		wake:     make(chan struct{}, 1),
		syncWake: make(chan struct{}, 1),
	}
}

// put queues st to be written soon; a later put of the same key replaces it.
func (w *statusWriter) put(st dispatcher.JobStatus) {
	key := dispatcher.StatusKey(st.Tenant, st.ID)
	w.mu.Lock()
	if _, queued := w.pending[key]; !queued {
		w.order = append(w.order, key)
	}
	w.pending[key] = st
	w.mu.Unlock()
	w.signal()
}

// update runs a read-modify-write of key's record through the writer and
// waits until it is stored (or failed, or ctx is done).
func (w *statusWriter) update(ctx context.Context, key string, fn func(cur dispatcher.JobStatus, found bool) dispatcher.JobStatus) error {
	return w.sync(ctx, &syncUpdate{key: key, update: fn, done: make(chan error, 1)})
}

// putSync writes st through the writer, in order with what is queued for
// its key, and waits until it is stored. The retry path uses it: the next
// delivery may run on another replica at once, and a late queued write from
// here must not land on top of what that replica records.
func (w *statusWriter) putSync(ctx context.Context, st dispatcher.JobStatus) error {
	return w.sync(ctx, &syncUpdate{key: dispatcher.StatusKey(st.Tenant, st.ID), st: st, done: make(chan error, 1)})
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
		// The caller goes on (it naks the job): a write it no longer waits
		// for must not land later, on top of the next delivery's record.
		w.mu.Lock()
		if i := slices.Index(w.syncs, u); i >= 0 {
			w.syncs = slices.Delete(w.syncs, i, i+1)
		}
		w.mu.Unlock()
		return fmt.Errorf("status %s: %w", key, context.Cause(ctx))
	}
}

// get reads key's record; found is false when there is none.
func (w *statusWriter) get(ctx context.Context, key string) (st dispatcher.JobStatus, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
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
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	if u.update == nil {
		data, err := json.Marshal(u.st)
		if err != nil {
			return fmt.Errorf("status %s: encode: %w", u.key, err)
		}
		if _, err := w.kv.Put(ctx, u.key, data); err != nil {
			return fmt.Errorf("status %s: write: %w", u.key, err)
		}
		return nil
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
		data, err := json.Marshal(u.update(cur, rev != 0))
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
	for _, st := range batch {
		data, err := json.Marshal(st)
		if err != nil {
			w.log.Error("encode job status", "tenant", st.Tenant, "job_id", st.ID, "error", err)
			continue
		}
		f, err := w.js.PublishAsync(w.prefix+dispatcher.StatusKey(st.Tenant, st.ID), data)
		if err != nil {
			w.log.Warn("write job status", "tenant", st.Tenant, "job_id", st.ID, "status", st.State, "error", err)
			continue
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(statusTimeout)
	defer timeout.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			w.log.Warn("write job status", "key", f.Msg().Subject[len(w.prefix):], "error", err)
		case <-timeout.C:
			w.log.Warn("write job status: no ack in time", "pending", len(futures))
			return
		case <-ctx.Done():
			return
		}
	}
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
