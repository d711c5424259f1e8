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
	// (dispatcher.StreamConfig.ConsumerStorage) in the scale scenario, for
	// the worker's run and its baseline alike; the other scenarios use the
	// default, file storage.
	ConsumerStorage jetstream.StorageType
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
