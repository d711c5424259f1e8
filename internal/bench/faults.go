package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/orgdispatch/orgdispatch/internal/faultsuite"
)

func init() {
	registerScenario(Scenario{
		Name:            "faults",
		Summary:         "3 tenants under load, real processes: kill a worker, serve, the nats-server, a cluster's stream leader; 5xx storm; one replica's token endpoint cut off; credentials revoked",
		DefaultDuration: 60 * time.Second,
		run: func(ctx context.Context, o Options) (*Report, error) {
			c := FaultsConfig{Options: o}
			for _, f := range o.Faults {
				c.Only = append(c.Only, faultsuite.Scenario(f))
			}
			return RunFaults(ctx, c)
		},
	})
}

// FaultsConfig sizes the faults scenario: every faultsuite scenario in
// turn, each with Duration of load (default 60 s) and the fault after
// Warmup (default 10 s). Zero fields take faultsuite's defaults.
type FaultsConfig struct {
	Options
	Warmup time.Duration
	// Only runs just these scenarios (all when empty).
	Only []faultsuite.Scenario
}

// FaultsFigures are the faults scenario's typed figures.
type FaultsFigures struct {
	Results []*faultsuite.Result `json:"results"`
	// StartTogether is serve and a worker started at once on a fresh
	// 3-node cluster (nil when not run).
	StartTogether *faultsuite.StartResult `json:"start_together,omitempty"`
	// Errors are the scenarios that could not be run, with why.
	Errors map[string]string `json:"errors,omitempty"`
}

// RunFaults runs the fault suite against real nats-server and orgdispatch
// processes (built from this module and the nats-server module go.mod
// requires) and reports, per fault, what was lost, duplicated and how long
// each tenant stalled.
func RunFaults(ctx context.Context, c FaultsConfig) (*Report, error) {
	c.Duration = c.duration(60 * time.Second)
	if c.Warmup <= 0 {
		c.Warmup = min(10*time.Second, c.Duration/4)
	}
	only := c.Only
	if len(only) == 0 {
		only = faultsuite.Scenarios()
	}
	for _, sc := range only {
		if !slices.Contains(faultsuite.Scenarios(), sc) {
			return nil, fmt.Errorf("bench: faults: unknown fault %q (known: %v)", sc, faultsuite.Scenarios())
		}
	}
	r := newReport("faults", "3 tenants under load; real nats-server and orgdispatch processes; one fault at a time")
	dir, err := os.MkdirTemp(c.Dir, "orgdispatch-faults-")
	if err != nil {
		return nil, fmt.Errorf("bench: faults: %w", err)
	}
	defer os.RemoveAll(dir)
	bins, err := faultsuite.Build(ctx, dir, faultsuite.Binaries{})
	if err != nil {
		return nil, fmt.Errorf("bench: faults: %w", err)
	}
	figs := &FaultsFigures{Errors: map[string]string{}}
	r.Figures = figs
	var first *faultsuite.Result
	// The summary comes first but is filled as the faults run (r.table's
	// pointer would not survive the per-fault tables appended meanwhile).
	summary := &Table{
		Title:   "summary: one row per fault (stall and recovery: the worst tenant the fault did not target; the targeted tenant's recovery counts from the fault's end)",
		Columns: []string{"fault", "in flight", "published", "succeeded", "dead", "lost", "dup", "longest stall s", "recover s", "slowest job s", "targeted tenant recover s"},
	}
	for _, sc := range only {
		res, err := faultsuite.Run(ctx, faultsuite.Config{
			Scenario: sc, Binaries: bins, Dir: dir,
			Warmup: c.Warmup, Duration: c.Duration, Logger: c.Logger,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			figs.Errors[string(sc)] = err.Error()
			r.target(string(sc)+": ran", "the scenario runs", false, "%s", firstLine(err.Error()))
			summary.row(string(sc), "error", "", "", "", "", "", "", "", "", "")
			continue
		}
		if first == nil {
			first = res
		}
		figs.Results = append(figs.Results, res)
		faultTable(r, res)
		summaryRow(summary, res)
		faultTargets(r, res)
	}
	if len(c.Only) == 0 {
		startTogether(ctx, r, figs, bins, dir, c)
	}
	r.Tables = append([]Table{*summary}, r.Tables...)
	if first != nil {
		r.set("tenants", "%d, each offered %.0f jobs/s after a backlog of %d jobs, concurrency %d, rate_per_minute %d", first.TenantCount, first.RatePerSec, first.Backlog, first.Concurrency, int(first.RatePerSec*60)*4)
		r.set("platform", "in-process simulator over HTTP on 127.0.0.1, %.0f ms per answer, no rate limit", first.LatencyMs)
	}
	r.set("load", "%s per fault, the fault after %s; then up to AckWait + 30 s for the jobs to drain", c.Duration, c.Warmup)
	r.set("processes", "nats-server %s and orgdispatch built from this module, as real processes on 127.0.0.1; jobs published with nats.go (Nats-Msg-Id <tenant>:<id>)", r.Machine.NATSServer)
	r.note("the machine line's nats-server is the version the processes run (built from go.mod), not an embedded one")
	r.note("a stall is the largest gap between a tenant's consecutive 2xx answers during the load; recover is from the fault until the tenant's gaps stay under %s; slowest job is publish → first 2xx, where a killed replica's own in-flight jobs wait out AckWait", faultsuite.ResumedGap)
	r.finish()
	return r, nil
}

// startTogether starts serve and a worker at the same moment on a fresh
// 3-node cluster: issue 9 saw both exit while provisioning.
func startTogether(ctx context.Context, r *Report, figs *FaultsFigures, bins faultsuite.Binaries, dir string, c FaultsConfig) {
	res, err := faultsuite.StartTogether(ctx, faultsuite.Config{Binaries: bins, Dir: dir, Logger: c.Logger})
	if err != nil {
		figs.Errors["start-together"] = err.Error()
		r.target("start-together: ran", "the check runs", false, "%s", firstLine(err.Error()))
		return
	}
	figs.StartTogether = res
	tb := r.table("start-together: a fresh "+res.Layout+", serve and the worker started at the same moment", "process", "ready", "after s", "exit")
	for _, p := range res.Processes {
		after := ""
		if p.Ready {
			after = fmt.Sprintf("%.1f", p.ReadySec)
		}
		tb.row(p.Name, fmt.Sprint(p.Ready), after, p.Exit)
	}
	r.target("start-together: both start", "both ready, and jobs run", res.AllReady && res.Succeeded == res.Published,
		"all ready: %v; jobs %d of %d succeeded", res.AllReady, res.Succeeded, res.Published)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// faultTable is one fault's per-tenant table.
func faultTable(r *Report, res *faultsuite.Result) {
	title := fmt.Sprintf("%s: %s; %s; fault at %.1f s", res.Scenario, res.Fault, res.Layout, res.FaultAtSec)
	if res.RestoreAtSec > 0 {
		title += fmt.Sprintf(", undone at %.1f s", res.RestoreAtSec)
	}
	title += fmt.Sprintf("; drained %v %.1f s after the load", res.Drained, res.DrainSec)
	tb := r.table(title, "tenant", "in flight", "published", "succeeded", "dead", "lost", "dup", "unconfirmed", "longest stall s", "stall at s", "recover s", "slowest job s")
	for _, t := range res.Tenants {
		name := t.Tenant
		if t.Targeted {
			name += " (targeted)"
		}
		tb.row(name, itoa(t.InFlightAtFault), itoa(t.Published), itoa(t.Succeeded), itoa(t.DeadLettered), itoa(t.Lost), itoa(t.Duplicates), itoa(t.Unconfirmed),
			t.StallText(), fmt.Sprintf("%.1f", t.StallAtSec), t.RecoverText(), fmt.Sprintf("%.1f", t.SlowestJobSec))
	}
	for _, e := range res.Exited {
		r.note("%s: unexpected exit of %s", res.Scenario, e)
	}
	for _, n := range res.Notes {
		r.note("%s: %s", res.Scenario, n)
	}
}

func itoa(n int) string { return fmt.Sprint(n) }

// worst is the untargeted tenant with the longest stall, and the targeted
// one (nil when none).
func worst(res *faultsuite.Result) (w, targeted *faultsuite.TenantResult) {
	for i := range res.Tenants {
		t := &res.Tenants[i]
		if t.Targeted {
			targeted = t
			continue
		}
		if w == nil || t.LongestStallSec > w.LongestStallSec || (t.LongestStallSec == w.LongestStallSec && (!t.Recovered || t.RecoverSec > w.RecoverSec)) {
			w = t
		}
	}
	return w, targeted
}

func summaryRow(tb *Table, res *faultsuite.Result) {
	w, tg := worst(res)
	slowest := 0.0
	for _, t := range res.Tenants {
		slowest = max(slowest, t.SlowestJobSec)
	}
	tgRecover := "—"
	if tg != nil {
		tgRecover = tg.RecoverText()
	}
	tb.row(string(res.Scenario), itoa(res.InFlightAtFault), itoa(res.Published), itoa(res.Succeeded), itoa(res.DeadLettered), itoa(res.Lost), itoa(res.Duplicates),
		w.StallText(), w.RecoverText(), fmt.Sprintf("%.1f", slowest), tgRecover)
}

// faultTargets judges one fault against issue 9's goals.
func faultTargets(r *Report, res *faultsuite.Result) {
	name := string(res.Scenario)
	r.target(name+": jobs lost", "0", res.Lost == 0 && res.Drained, "%d (drained: %v)", res.Lost, res.Drained)
	r.target(name+": duplicates", "≤ in flight at the fault", res.Duplicates <= res.InFlightAtFault, "%d, %d in flight", res.Duplicates, res.InFlightAtFault)
	d := faultsuite.RecoveryTarget.Seconds()
	ok := true
	var got []string
	for _, t := range res.Tenants {
		ok = ok && t.Resumed(d)
		got = append(got, fmt.Sprintf("%s stall %s s, recover %s", t.Tenant, t.StallText(), t.RecoverText()))
	}
	r.target(name+": every tenant's calls resume", fmt.Sprintf("within %s (targeted tenant: of the fault's end)", faultsuite.RecoveryTarget), ok, "%s", strings.Join(got, "; "))
	if len(res.Exited) > 0 {
		r.target(name+": processes", "none exits unless killed", false, "%s", strings.Join(res.Exited, "; "))
	}
}
