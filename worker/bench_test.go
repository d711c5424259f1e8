package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// benchEnv is newEnv for benchmarks.
func benchEnv(b *testing.B, ids []string) *env {
	srv, nc, js := natstest.RunServer(b)
	cfg := platformtest.Config{AutoCreate: true, MaxRecorded: -1}
	for _, id := range ids {
		cfg.Clients = append(cfg.Clients, platformtest.ClientCred{ID: "client_" + id, Secret: "secret_" + id, Org: id})
	}
	sim := platformtest.NewServer(b, cfg)
	return &env{srv: srv, nc: nc, js: js, names: dispatcher.MustNames(""), sim: sim}
}

func (e *env) benchTenant(id string, concurrency int) tenants.Tenant {
	return tenants.Tenant{
		ID: id, ClientID: "client_" + id, ClientSecret: tenants.NewSecret("secret_" + id),
		APIBase: e.sim.URL, TokenURL: e.sim.TokenURL(),
		RatePerMinute: 60_000_000, Burst: 1000, Concurrency: concurrency, MaxAttempts: 5, QuotaScope: tenants.ScopeToken,
	}
}

// publishBulk queues n jobs per tenant with async publishes (the benchmark
// measures the worker, not the publisher).
func publishBulk(b *testing.B, js jetstream.JetStream, names dispatcher.Names, ids []string, n int) {
	for i := range n {
		for _, id := range ids {
			job := dispatcher.Job{ID: fmt.Sprintf("j%d", i), Op: "campaign.get", Params: json.RawMessage(`{"campaign_id":"c1"}`)}
			data, _ := json.Marshal(job)
			m := &nats.Msg{Subject: names.JobSubject(id, job.Op), Data: data, Header: nats.Header{}}
			m.Header.Set(nats.MsgIdHdr, dispatcher.MsgID(id, job.ID))
			if _, err := js.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		b.Fatal("publish did not complete")
	}
}

// BenchmarkPoolThroughput: jobs/s end to end through one pool (no quota,
// zero-latency simulator), for one tenant at concurrency 64 and 100 tenants
// at concurrency 4. The jobs are queued first; the clock runs from Run to
// the last success.
func BenchmarkPoolThroughput(b *testing.B) {
	for _, tc := range []struct {
		tenants, concurrency int
	}{{1, 64}, {100, 4}} {
		b.Run(fmt.Sprintf("tenants=%d", tc.tenants), func(b *testing.B) {
			ids := make([]string, tc.tenants)
			for i := range ids {
				ids[i] = fmt.Sprintf("t%03d", i)
			}
			e := benchEnv(b, ids)
			ts := make([]tenants.Tenant, len(ids))
			for i, id := range ids {
				ts[i] = e.benchTenant(id, tc.concurrency)
			}
			ctx := context.Background()
			if err := dispatcher.Provision(ctx, e.js, e.names, dispatcher.StreamConfig{}, ts); err != nil {
				b.Fatal(err)
			}
			perTenant := max(1, b.N/len(ids))
			total := perTenant * len(ids)
			publishBulk(b, e.js, e.names, ids, perTenant)
			// Enough idle connections for every lane's requests in flight: the
			// benchmark measures the worker, not connection set-up.
			tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
			defer tr.CloseIdleConnections()
			p, err := New(Config{
				JS: e.js, Conn: e.nc, Names: e.names, Tenants: ts, ReplicaID: "bench",
				HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second},
				Hooks:      &countHooks{done: make(chan struct{}), want: int64(total)},
			})
			if err != nil {
				b.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			runDone := make(chan error, 1)
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			go func() { runDone <- p.Run(runCtx) }()
			ch := p.cfg.Hooks.(*countHooks)
			select {
			case <-ch.done:
			case <-time.After(5 * time.Minute):
				b.Fatalf("only %d of %d jobs done", ch.n.Load(), total)
			}
			elapsed := time.Since(start)
			cpu := cpuTime() - cpu0
			b.StopTimer()
			// CPU per job (worker, simulator and nats-server together: they
			// share the process) holds on a busy machine; jobs/s does not.
			b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-µs/job")
			b.ReportMetric(float64(total)/elapsed.Seconds(), "jobs/s")
			b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
			cancel()
			if err := <-runDone; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// countHooks closes done when want jobs have succeeded.
type countHooks struct {
	NopHooks
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (h *countHooks) JobFinished(tenant, op, outcome string, elapsed time.Duration) {
	if outcome == OutcomeSucceeded && h.n.Add(1) == h.want {
		close(h.done)
	}
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStart1000Tenants: one pool with 1,000 lanes (one Messages
// iterator each); the clock runs from Run until every tenant's first job has
// succeeded. Reports goroutines and heap once running.
func BenchmarkStart1000Tenants(b *testing.B) {
	const n = 1000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%04d", i)
	}
	e := benchEnv(b, ids)
	ts := make([]tenants.Tenant, n)
	for i, id := range ids {
		ts[i] = e.benchTenant(id, 4)
	}
	ctx := context.Background()
	if err := dispatcher.Provision(ctx, e.js, e.names, dispatcher.StreamConfig{}, ts); err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	defer tr.CloseIdleConnections()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		for _, id := range ids {
			job := dispatcher.Job{ID: fmt.Sprintf("s%d", i), Op: "campaign.get", Params: json.RawMessage(`{"campaign_id":"c1"}`)}
			data, _ := json.Marshal(job)
			if _, err := e.js.PublishAsync(e.names.JobSubject(id, job.Op), data); err != nil {
				b.Fatal(err)
			}
		}
		<-e.js.PublishAsyncComplete()
		hooks := &countHooks{done: make(chan struct{}), want: n}
		p, err := New(Config{
			JS: e.js, Conn: e.nc, Names: e.names, Tenants: ts, ReplicaID: "bench",
			HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}, Hooks: hooks,
		})
		if err != nil {
			b.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		runDone := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { runDone <- p.Run(runCtx) }()
		select {
		case <-hooks.done:
		case <-time.After(2 * time.Minute):
			b.Fatalf("only %d of %d tenants done", hooks.n.Load(), n)
		}
		b.StopTimer()
		b.ReportMetric(time.Since(start).Seconds(), "s-to-all-lanes")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		stopStart := time.Now()
		cancel()
		if err := <-runDone; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(stopStart).Seconds(), "s-to-stop")
		b.StartTimer()
	}
}
