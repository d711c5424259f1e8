package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
)

// The writer keeps a key's writes in order: a queued (coalesced) put never
// lands after a synchronous update of the same key, so a free delivery that
// was counted stays counted.
func TestStatusWriterOrdersWritesPerKey(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "status"})
	if err != nil {
		t.Fatal(err)
	}
	w := newStatusWriter(js, kv, "status", slog.New(slog.NewTextHandler(io.Discard, nil)))
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx, time.Second) }()
	defer stop()

	const jobs = 200
	for i := range jobs {
		id := fmt.Sprintf("j%d", i)
		w.put(dispatcher.JobStatus{ID: id, Tenant: "a", State: dispatcher.StateRunning, Attempts: 1})
		if i%2 == 0 {
			err := w.update(ctx, dispatcher.StatusKey("a", id), func(cur dispatcher.JobStatus, found bool) dispatcher.JobStatus {
				cur.ID, cur.Tenant, cur.State = id, "a", dispatcher.StateRetrying
				cur.FreeDeliveries++
				return cur
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// Stopping the writer flushes what is queued.
	stop()
	<-done
	for i := range jobs {
		id := fmt.Sprintf("j%d", i)
		st, found, err := w.get(ctx, dispatcher.StatusKey("a", id))
		if err != nil || !found {
			t.Fatalf("%s: found %v, %v", id, found, err)
		}
		want := dispatcher.StateRunning
		if i%2 == 0 {
			want = dispatcher.StateRetrying
		}
		if st.State != want || (i%2 == 0 && st.FreeDeliveries != 1) {
			t.Errorf("%s: %+v, want %s", id, st, want)
		}
	}
}

// A synchronous write whose caller stopped waiting (its ctx ended: the caller
// went on to Nak the job) must not be applied later: by then the next
// delivery, perhaps on another replica, may have written a newer record,
// which the stale one would overwrite.
func TestStatusWriterDropsAbandonedSyncWrites(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "status"})
	if err != nil {
		t.Fatal(err)
	}
	w := newStatusWriter(js, kv, "status", slog.New(slog.NewTextHandler(io.Discard, nil)))

	// The writer is busy (not running yet): the callers give up waiting.
	gone, giveUp := context.WithCancel(context.Background())
	giveUp()
	key := dispatcher.StatusKey("a", "j1")
	if err := w.update(gone, key, func(cur dispatcher.JobStatus, found bool) dispatcher.JobStatus {
		return dispatcher.JobStatus{ID: "j1", Tenant: "a", State: dispatcher.StateRetrying, FreeDeliveries: cur.FreeDeliveries + 1}
	}); err == nil {
		t.Fatal("update with a cancelled ctx reported success")
	}
	if err := w.putSync(gone, dispatcher.JobStatus{ID: "j2", Tenant: "a", State: dispatcher.StateRetrying}); err == nil {
		t.Fatal("putSync with a cancelled ctx reported success")
	}

	// Meanwhile the next deliveries finished and recorded their outcome.
	for _, id := range []string{"j1", "j2"} {
		data := fmt.Appendf(nil, `{"id":%q,"tenant":"a","state":%q}`, id, dispatcher.StateSucceeded)
		if _, err := kv.Put(ctx, dispatcher.StatusKey("a", id), data); err != nil {
			t.Fatal(err)
		}
	}

	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx, time.Second) }()
	// A later write through the writer is applied; once it is, anything
	// queued before it has been handled.
	if err := w.putSync(ctx, dispatcher.JobStatus{ID: "j3", Tenant: "a", State: dispatcher.StateRetrying}); err != nil {
		t.Fatal(err)
	}
	stop()
	<-done
	for _, id := range []string{"j1", "j2"} {
		st, found, err := w.get(ctx, dispatcher.StatusKey("a", id))
		if err != nil || !found {
			t.Fatalf("%s: found %v, %v", id, found, err)
		}
		if st.State != dispatcher.StateSucceeded {
			t.Errorf("%s: %+v: an abandoned write overwrote the newer record", id, st)
		}
	}
}
