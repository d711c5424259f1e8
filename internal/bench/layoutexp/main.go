// Command layoutexp measures what a NATS layout for many tenants costs
// nats-server itself, before any job flows: how long creating the streams
// and one durable (memory-storage) consumer per tenant takes, the heap and
// goroutines the embedded server then holds, its idle CPU, and how long it
// takes to restart on the same store. It is the experiment behind the
// choice of dispatcher.JobShards (docs/benchmarks.md, scale):
//
//	go run ./internal/bench/layoutexp -tenants 10000 -layout per-tenant
//	go run ./internal/bench/layoutexp -tenants 10000 -layout sharded -shards 16
//
// Everything runs in this process on 127.0.0.1 with a temporary store.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	tenants := flag.Int("tenants", 1000, "tenants, each with one durable consumer")
	layout := flag.String("layout", "sharded", "per-tenant (a stream per tenant) or sharded")
	shards := flag.Int("shards", 16, "jobs streams of the sharded layout")
	flag.Parse()
	if *layout != "per-tenant" && *layout != "sharded" {
		log.Fatalf("layoutexp: -layout %q: want per-tenant or sharded", *layout)
	}
	dir, err := os.MkdirTemp("", "layoutexp")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true}
	s := start(opts)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	stream := func(i int) string {
		if *layout == "per-tenant" {
			return fmt.Sprintf("J_org_%d", i)
		}
		return fmt.Sprintf("J_%02d", i%*shards)
	}

	began := time.Now()
	if *layout == "sharded" {
		subjects := make([][]string, *shards)
		for i := range *tenants {
			subjects[i%*shards] = append(subjects[i%*shards], fmt.Sprintf("orgdispatch.jobs.org_%d.>", i))
		}
		for k := range *shards {
			if _, err := js.CreateStream(ctx, streamConfig(stream(k), subjects[k])); err != nil {
				log.Fatal(err)
			}
		}
	}
	streamsDone := time.Since(began)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range *tenants {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			filter := fmt.Sprintf("orgdispatch.jobs.org_%d.>", i)
			if *layout == "per-tenant" {
				if _, err := js.CreateStream(ctx, streamConfig(stream(i), []string{filter})); err != nil {
					log.Fatal(err)
				}
			}
			if _, err := js.CreateConsumer(ctx, stream(i), jetstream.ConsumerConfig{
				Durable: fmt.Sprintf("tenant_org_%d", i), FilterSubject: filter,
				AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1, MaxAckPending: 10_000, MemoryStorage: true,
			}); err != nil {
				log.Fatal(err)
			}
		})
	}
	wg.Wait()
	created := time.Since(began)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	goroutines := runtime.NumGoroutine()
	cpu0 := cpuSeconds()
	idle := time.Now()
	<-time.After(10 * time.Second) // the measured idle period itself
	idleCores := (cpuSeconds() - cpu0) / time.Since(idle).Seconds()

	nc.Close()
	s.Shutdown()
	s.WaitForShutdown()
	restartBegan := time.Now()
	s = start(opts)
	restart := time.Since(restartBegan)
	s.Shutdown()

	fmt.Printf("layout %s (%d shards), %d tenants\n", *layout, *shards, *tenants)
	if *layout == "sharded" {
		fmt.Printf("  streams created      %s\n", streamsDone.Round(time.Millisecond))
	}
	fmt.Printf("  streams + consumers  %s\n", created.Round(time.Millisecond))
	fmt.Printf("  heap in use          %d MB, %d goroutines\n", ms.HeapInuse>>20, goroutines)
	fmt.Printf("  idle CPU             %.3f cores\n", idleCores)
	fmt.Printf("  restart until ready  %s\n", restart.Round(time.Millisecond))
}

func streamConfig(name string, subjects []string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: name, Subjects: subjects, Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew,
		MaxConsumers: -1, Duplicates: 10 * time.Minute,
	}
}

func start(opts *server.Options) *server.Server {
	s, err := server.NewServer(opts)
	if err != nil {
		log.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(5 * time.Minute) {
		log.Fatal("layoutexp: nats-server not ready")
	}
	return s
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
