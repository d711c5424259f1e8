package dispatcher_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

var storages = []jetstream.StorageType{jetstream.FileStorage, jetstream.MemoryStorage}

func TestProvisionConsumerStorage(t *testing.T) {
	for _, storage := range storages {
		t.Run(storage.String(), func(t *testing.T) {
			_, _, js := natstest.RunServer(t)
			names := dispatcher.MustNames("")
			cfg := dispatcher.StreamConfig{ConsumerStorage: storage}
			ts := tenantList(4, 2)
			provision(t, js, names, cfg, ts)
			for _, tn := range ts {
				if got := consumerInfo(t, js, names, tn.ID).Config.MemoryStorage; got != (storage == jetstream.MemoryStorage) {
					t.Errorf("%s: MemoryStorage %v with %v configured", tn.ID, got, storage)
				}
			}
			if got := cfg.ConsumerConfig(names, ts[0]).MemoryStorage; got != (storage == jetstream.MemoryStorage) {
				t.Errorf("StreamConfig.ConsumerConfig: MemoryStorage %v", got)
			}
			// The jobs stream and the buckets stay on file either way.
			jobs, err := js.Stream(t.Context(), names.JobsStream("org_1"))
			if err != nil {
				t.Fatal(err)
			}
			if st := jobs.CachedInfo().Config.Storage; st != jetstream.FileStorage {
				t.Errorf("jobs stream storage %v", st)
			}

			// Re-provisioning with the same storage changes nothing.
			for i := range 5 {
				publishRaw(t, js, names, "org_1", fmt.Sprintf("j%d", i))
			}
			deliver(t, js, names, "org_1", 3, 1)
			before := stateOf(consumerInfo(t, js, names, "org_1"))
			provision(t, js, names, cfg, ts)
			if _, err := dispatcher.EnsureConsumerWith(t.Context(), js, names, cfg, ts[0]); err != nil {
				t.Fatalf("EnsureConsumerWith: %v", err)
			}
			after := stateOf(consumerInfo(t, js, names, "org_1"))
			if fmt.Sprintf("%+v", after) != fmt.Sprintf("%+v", before) {
				t.Errorf("re-provisioning changed the consumer:\nbefore %+v\nafter  %+v", before, after)
			}

			// An earlier version's consumer is upgraded in place.
			old := cfg.ConsumerConfig(names, ts[0])
			old.MaxAckPending = 4
			if _, err := js.UpdateConsumer(t.Context(), names.JobsStream(old.Durable[len("tenant_"):]), old); err != nil {
				t.Fatal(err)
			}
			provision(t, js, names, cfg, tenantList(6, 2))
			info := consumerInfo(t, js, names, "org_1")
			if info.Config.MaxAckPending != dispatcher.ConsumerMaxAckPending || info.Config.MemoryStorage != (storage == jetstream.MemoryStorage) || info.NumAckPending != 2 || !info.Created.Equal(before.Created) {
				t.Errorf("update: MaxAckPending %d, MemoryStorage %v, ack pending %d, created %v (was %v)",
					info.Config.MaxAckPending, info.Config.MemoryStorage, info.NumAckPending, info.Created, before.Created)
			}

			// A tenant added later gets the configured storage too.
			c, err := dispatcher.EnsureConsumerWith(t.Context(), js, names, cfg, tenants.Tenant{ID: "late", Concurrency: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.CachedInfo().Config.MemoryStorage; got != (storage == jetstream.MemoryStorage) {
				t.Errorf("EnsureConsumerWith created MemoryStorage %v", got)
			}
		})
	}
}

// TestServerRefusesConsumerStorageChange pins down the nats-server
// behaviour ConsumerStorageError stands in for.
func TestServerRefusesConsumerStorageChange(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	provision(t, js, names, dispatcher.StreamConfig{}, tenantList(4))
	cfg := dispatcher.StreamConfig{ConsumerStorage: jetstream.MemoryStorage}.ConsumerConfig(names, tenantList(4)[0])
	_, err := js.CreateOrUpdateConsumer(t.Context(), names.JobsStream(tenantList(4)[0].ID), cfg)
	if err == nil || !strings.Contains(err.Error(), "storage type can not be updated") {
		t.Fatalf("changing a consumer's storage: %v, want the server to refuse", err)
	}
}

func TestConsumerStorageChangeIsRefused(t *testing.T) {
	for _, from := range storages {
		to := jetstream.MemoryStorage
		if from == jetstream.MemoryStorage {
			to = jetstream.FileStorage
		}
		t.Run(from.String()+"To"+to.String(), func(t *testing.T) {
			_, _, js := natstest.RunServer(t)
			names := dispatcher.MustNames("")
			provision(t, js, names, dispatcher.StreamConfig{ConsumerStorage: from}, tenantList(4, 4, 4, 4, 4))
			for i := range 3 {
				publishRaw(t, js, names, "org_1", fmt.Sprintf("j%d", i))
			}

			// Provision refuses before changing anything, even settings
			// it could change.
			err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{ConsumerStorage: to}, tenantList(7, 7, 7, 7, 7))
			var se *dispatcher.ConsumerStorageError
			if !errors.As(err, &se) {
				t.Fatalf("Provision with the other storage: %v, want *ConsumerStorageError", err)
			}
			if len(se.Consumers) != 5 || se.Consumers[0] != "tenant_org_1" || se.Want != to || !names.IsJobsStream(se.Stream) {
				t.Errorf("error %+v", se)
			}
			for _, want := range []string{
				"consumers tenant_org_1, tenant_org_2, tenant_org_3 and 2 more of stream ORGDISPATCH_JOBS_",
				"cannot change a consumer's storage",
				"nats consumer rm ORGDISPATCH_JOBS_",
				"the stream keeps the queued jobs",
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if info := consumerInfo(t, js, names, "org_1"); info.Config.MaxAckPending != dispatcher.ConsumerMaxAckPending || info.Config.MemoryStorage != (from == jetstream.MemoryStorage) {
				t.Errorf("refused provisioning changed the consumer: %+v", info.Config)
			}

			_, err = dispatcher.EnsureConsumerWith(t.Context(), js, names, dispatcher.StreamConfig{ConsumerStorage: to}, tenants.Tenant{ID: "org_2", Concurrency: 4})
			if !errors.As(err, &se) || !strings.Contains(err.Error(), "consumer tenant_org_2 of stream") || !strings.Contains(err.Error(), "delete it") {
				t.Errorf("EnsureConsumerWith with the other storage: %v", err)
			}

			// The migration the error describes: delete, provision again;
			// the queued jobs are delivered by the new consumer.
			for _, tn := range tenantList(4, 4, 4, 4, 4) {
				if err := dispatcher.RemoveConsumer(t.Context(), js, names, tn.ID); err != nil {
					t.Fatal(err)
				}
			}
			provision(t, js, names, dispatcher.StreamConfig{ConsumerStorage: to}, tenantList(4, 4, 4, 4, 4))
			if info := consumerInfo(t, js, names, "org_1"); info.Config.MemoryStorage != (to == jetstream.MemoryStorage) || info.NumPending != 3 {
				t.Errorf("after migrating: MemoryStorage %v, pending %d, want %v, 3", info.Config.MemoryStorage, info.NumPending, to == jetstream.MemoryStorage)
			}
			deliver(t, js, names, "org_1", 3, 3)
		})
	}
}

func TestProvisionRejectsUnknownConsumerStorage(t *testing.T) {
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{ConsumerStorage: 7}, tenantList(1))
	if err == nil || !strings.Contains(err.Error(), "consumer storage 7") {
		t.Errorf("Provision: %v", err)
	}
	if _, err := dispatcher.EnsureConsumerWith(t.Context(), js, names, dispatcher.StreamConfig{ConsumerStorage: 7}, tenantList(1)[0]); err == nil {
		t.Error("EnsureConsumerWith accepted storage 7")
	}
}

// TestConsumerStorageAcrossRestart restarts nats-server on the same store:
// a file-storage consumer comes back with its delivery state and pause; a
// memory-storage one is gone until provisioning creates it again, and then
// delivers every job still in the stream afresh, unpaused.
func TestConsumerStorageAcrossRestart(t *testing.T) {
	for _, storage := range storages {
		t.Run(storage.String(), func(t *testing.T) {
			dir := t.TempDir()
			names := dispatcher.MustNames("")
			cfg := dispatcher.StreamConfig{ConsumerStorage: storage}
			ts := tenantList(4)

			srv, js := startAt(t, dir)
			provision(t, js, names, cfg, ts)
			for i := range 3 {
				publishRaw(t, js, names, "org_1", fmt.Sprintf("j%d", i))
			}
			deliver(t, js, names, "org_1", 2, 1) // j0 acked, j1 delivered and not acked
			until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			if err := dispatcher.Pause(t.Context(), js, names, "org_1", until, "429", "test"); err != nil {
				t.Fatal(err)
			}
			srv.Shutdown()

			_, js = startAt(t, dir)
			_, err := js.Consumer(t.Context(), names.JobsStream("org_1"), names.Consumer("org_1"))
			switch storage {
			case jetstream.FileStorage:
				if err != nil {
					t.Fatalf("file-storage consumer after restart: %v", err)
				}
			case jetstream.MemoryStorage:
				if !errors.Is(err, jetstream.ErrConsumerNotFound) {
					t.Fatalf("memory-storage consumer after restart: %v, want not found", err)
				}
			}
			jobs, err := js.Stream(t.Context(), names.JobsStream("org_1"))
			if err != nil {
				t.Fatal(err)
			}
			if n := jobs.CachedInfo().State.Msgs; n != 2 {
				t.Errorf("jobs stream after restart holds %d jobs, want the 2 unacknowledged", n)
			}

			provision(t, js, names, cfg, ts)
			info := consumerInfo(t, js, names, "org_1")
			paused, rec, err := dispatcher.PauseState(t.Context(), js, names, "org_1")
			if err != nil {
				t.Fatal(err)
			}
			// The pause keeps its recorded reason, even when the server
			// forgot the consumer and Provision made it again.
			if rec == nil || rec.Reason != "429" || rec.By != "test" || !rec.Until.Equal(until) {
				t.Errorf("pause record after restart: %+v, want reason 429 by test until %v", rec, until)
			}
			switch storage {
			case jetstream.FileStorage:
				if !paused.Equal(until) || info.NumAckPending != 1 || info.NumPending != 1 || info.Delivered.Consumer != 2 {
					t.Errorf("file storage after restart: paused until %v (want %v), ack pending %d, pending %d, delivered %d; want 1, 1, 2",
						paused, until, info.NumAckPending, info.NumPending, info.Delivered.Consumer)
				}
			case jetstream.MemoryStorage:
				// The server forgot the consumer; Provision made it again,
				// paused until the recorded deadline.
				if !paused.Equal(until) || info.NumAckPending != 0 || info.NumPending != 2 || info.Delivered.Consumer != 0 {
					t.Errorf("memory storage after restart: paused until %v (want %v), ack pending %d, pending %d, delivered %d; want 0, 2, 0",
						paused, until, info.NumAckPending, info.NumPending, info.Delivered.Consumer)
				}
				if err := dispatcher.Resume(t.Context(), js, names, "org_1"); err != nil {
					t.Fatal(err)
				}
				// j1 was delivered once before the restart; the new consumer
				// delivers it again as a first delivery.
				c, err := js.Consumer(t.Context(), names.JobsStream("org_1"), names.Consumer("org_1"))
				if err != nil {
					t.Fatal(err)
				}
				batch, err := c.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for m := range batch.Messages() {
					md, err := m.Metadata()
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, fmt.Sprintf("%s#%d", m.Headers().Get(jetstream.MsgIDHeader), md.NumDelivered))
				}
				if want := "[org_1:j1#1 org_1:j2#1]"; fmt.Sprint(got) != want {
					t.Errorf("delivered after restart %v, want %s", got, want)
				}
			}
		})
	}
}

// startAt starts a nats-server on store dir and connects to it; t.Cleanup
// shuts it down (again).
func startAt(t *testing.T, dir string) (*natsserver.Server, jetstream.JetStream) {
	t.Helper()
	srv, err := natsserver.Start(natsserver.Config{StoreDir: dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return srv, js
}
