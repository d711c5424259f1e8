package bench

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Options are the settings every scenario shares; the command line sets
// them. Zero values mean the scenario's defaults.
type Options struct {
	// Duration is the scenario's main measuring time (per mode or phase
	// where the scenario has several); 0 means the scenario's default.
	Duration time.Duration
	// Dir is where temporary JetStream stores are made; "" means the
	// system's temporary directory.
	Dir string
	// Logger receives the components' logs; nil discards them.
	Logger *slog.Logger
	// ProfileDir, when set, receives the CPU profiles that scenarios with a
	// CPU breakdown (overhead, scale) record, one file per measured phase
	// (<scenario>-<phase>.pprof), for go tool pprof.
	ProfileDir string
	// ConsumerStorage is the tenant consumers' storage
	// (dispatcher.StreamConfig.ConsumerStorage) in the scale and flood
	// scenarios, for the worker's runs and the baseline alike; the other
	// scenarios use file storage. The zero value is file storage; the
	// command line's default is memory, the product's default.
	ConsumerStorage jetstream.StorageType
	// Tenants and PerSec size the scale and flood scenarios' load: that
	// many tenants, each offering PerSec jobs/s (fractions allowed); 0
	// means the scenario's default.
	Tenants int
	PerSec  float64
	// NATSURL makes the scale and flood scenarios run against an external
	// NATS server or cluster (URLs comma-separated) instead of embedded
	// ones, under a NATS name prefix of their own that is deleted at the
	// end. NATSMonitor lists those servers' HTTP monitor base URLs
	// (comma-separated), from whose /varz their CPU and RSS are read; empty
	// leaves the server's CPU and RSS unmeasured.
	NATSURL     string
	NATSMonitor string
	// Cluster > 1 runs the scale and flood scenarios on that many embedded
	// nats-servers clustered over loopback, in this process.
	Cluster int
	// Replicas of the streams and buckets (dispatcher.StreamConfig.Replicas)
	// in the scale and flood scenarios; 0 means min(Cluster, 3) with
	// Cluster, else 1.
	Replicas int
	// LegacyHeaders makes the utilization scenario's simulator also send the
	// inin-ratelimit-* headers that Genesys Cloud removed in 2021, to compare
	// rate: auto's legacy header pacing with what today's platform gives.
	LegacyHeaders bool
	// Faults names the faults scenario's faults to run (faultsuite
	// scenario names); empty runs them all.
	Faults []string
}

func (o Options) duration(def time.Duration) time.Duration {
	if o.Duration > 0 {
		return o.Duration
	}
	return def
}

// Scenario is one benchmark scenario.
type Scenario struct {
	Name    string
	Summary string
	// DefaultDuration is the measuring time with default flags.
	DefaultDuration time.Duration
	run             func(ctx context.Context, o Options) (*Report, error)
}

var scenarios = map[string]Scenario{}

func registerScenario(s Scenario) { scenarios[s.Name] = s }

// Scenarios lists the scenarios by name.
func Scenarios() []Scenario {
	out := make([]Scenario, 0, len(scenarios))
	for _, s := range scenarios {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Run runs the named scenario with o and returns its report.
func Run(ctx context.Context, name string, o Options) (*Report, error) {
	s, ok := scenarios[name]
	if !ok {
		return nil, fmt.Errorf("bench: unknown scenario %q", name)
	}
	return s.run(ctx, o)
}

// newReport starts a report: the machine is probed now.
func newReport(scenario, summary string) *Report {
	return &Report{Scenario: scenario, Summary: summary, Started: time.Now(), Machine: probeMachine()}
}

// finish stamps the report's end.
func (r *Report) finish() {
	r.ElapsedSec = time.Since(r.Started).Seconds()
	r.Machine.LoadAvgEnd = loadAvg()
}
