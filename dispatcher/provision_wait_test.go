package dispatcher_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// Replicas that start together provision together: none fails on what
// another one created a moment before.
func TestProvisionWhenReadyConcurrently(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	var ts []tenants.Tenant
	for i := range 40 {
		ts = append(ts, tenants.Tenant{ID: fmt.Sprintf("t%d", i), Concurrency: 2})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { errs[i] = dispatcher.ProvisionWhenReady(ctx, js, names, dispatcher.StreamConfig{}, ts, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	streams, err := dispatcher.JobsStreams(ctx, js, names)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range streams {
		n += s.CachedInfo().State.Consumers
	}
	if n != len(ts) {
		t.Errorf("%d consumers, want %d", n, len(ts))
	}
}

// Against a cluster without a meta leader, provisioning waits (one log line,
// not one per attempt) until its ctx ends, and then says why it stopped.
func TestProvisionWhenReadyWaitsForCluster(t *testing.T) {
	c := natstest.NewCluster(t, 3)
	c.Start(0) // alone: no quorum, no meta leader
	nc, err := nats.Connect(c.ClientURL(0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	// No deadline on ctx: each request times out on its own (300ms), as
	// in production (5s), and the waiting ends when ctx is cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := time.AfterFunc(3*time.Second, cancel)
	defer stop.Stop()
	err = dispatcher.ProvisionWhenReady(ctx, js, dispatcher.MustNames(""), dispatcher.StreamConfig{Replicas: 3}, nil, logger)
	if err == nil || !strings.Contains(err.Error(), "gave up waiting") {
		t.Fatalf("ProvisionWhenReady without a meta leader = %v, want it to wait until ctx ends", err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("%d warnings while waiting, want 1 (one per condition):\n%s", n, out)
	}
	t.Logf("gave up with: %v", err)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
