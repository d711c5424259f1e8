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
