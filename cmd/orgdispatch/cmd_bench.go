package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/bench"
	"github.com/orgdispatch/orgdispatch/internal/config"
	"github.com/orgdispatch/orgdispatch/internal/faultsuite"
)

func init() {
	register(command{
		name:    "bench",
		summary: "run a benchmark scenario (isolation, utilization, pause, overhead, scale, flood, replay, faults)",
		run:     runBench,
	})
}

const benchHelp = `Usage: orgdispatch bench <scenario> [flags]

Runs one benchmark scenario against an embedded JetStream server (file
storage in a temporary directory) and the in-process platform simulator over
HTTP on 127.0.0.1, prints its table with the machine and the quotas used,
and marks each target met or missed. See docs/benchmarks.md. The faults
scenario instead runs nats-server and orgdispatch as real processes, built
with the go command from this module (run it inside the module); see
docs/reliability.md.

The scale and flood scenarios take --tenants and --per-sec, and can run on
an embedded loopback cluster (--cluster 3, R3 streams) or on an external
NATS server or cluster (--nats-url; its CPU and RSS from --nats-monitor):
they then work under a NATS name prefix of their own (bench<hex>) and delete
its streams, buckets and consumers at the end.

Scenarios:
%s
Flags:
`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var list strings.Builder
	for _, s := range bench.Scenarios() {
		fmt.Fprintf(&list, "  %-12s %s (default duration %s)\n", s.Name, s.Summary, s.DefaultDuration)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), benchHelp, list.String())
		fs.PrintDefaults()
	}
	duration := fs.Duration("duration", 0, "measuring time (per mode or phase); 0: the scenario's default")
	jsonFile := fs.String("json", "", "also write the figures as JSON to this file")
	svgFile := fs.String("svg", "", "write the scenario's plot as SVG to this file (isolation)")
	profileDir := fs.String("profile-dir", "", "write the CPU profiles of the overhead, scale and flood phases to this directory")
	dir := fs.String("dir", "", "parent of the temporary JetStream store directories (default: the system's)")
	consumerStorage := fs.String("consumer-storage", "memory", "scale, flood: tenant consumers' storage, memory or file (as ORGDISPATCH_CONSUMER_STORAGE, whose default is memory)")
	tenantCount := fs.Int("tenants", 1000, "scale, flood: number of tenants")
	perSec := fs.Float64("per-sec", 5, "scale, flood: jobs per second each tenant offers (fractions allowed, e.g. 0.5)")
	natsURL := fs.String("nats-url", "", "scale, flood: run against this external NATS server or cluster (URL[,URL…]) instead of an embedded one")
	natsMonitor := fs.String("nats-monitor", "", "scale, flood with --nats-url: the servers' HTTP monitor base URLs (URL[,URL…], e.g. http://127.0.0.1:8222), whose /varz gives their CPU and RSS")
	cluster := fs.Int("cluster", 0, "scale, flood: run on an embedded loopback JetStream cluster of this many nodes (3 to 5; streams R3)")
	replicas := fs.Int("replicas", 0, "scale, flood: replicas of the streams and buckets (default 1; with --cluster min(nodes, 3))")
	faults := fs.String("faults", "", "faults scenario: comma-separated faults to run (default all: "+faultNames()+")")
	legacyHeaders := fs.Bool("legacy-headers", false, "utilization scenario: the simulator also sends the inin-ratelimit-* headers Genesys Cloud removed in 2021 (for comparison)")

	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := fs.Parse(args); err != nil {
			return err
		}
		fs.Usage()
		return fmt.Errorf("%w: name a scenario", errUsage)
	}
	name := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *duration < 0 {
		return fmt.Errorf("%w: --duration %s is negative", errUsage, *duration)
	}
	known := false
	for _, s := range bench.Scenarios() {
		known = known || s.Name == name
	}
	if !known {
		fs.Usage()
		return fmt.Errorf("%w: unknown scenario %q", errUsage, name)
	}
	if *svgFile != "" && name != "isolation" {
		return fmt.Errorf("%w: --svg: only the isolation scenario draws a plot", errUsage)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	scaleLike := name == "scale" || name == "flood"
	for _, f := range []string{"consumer-storage", "tenants", "per-sec", "nats-url", "nats-monitor", "cluster", "replicas"} {
		if set[f] && !scaleLike {
			return fmt.Errorf("%w: --%s: only the scale and flood scenarios take it", errUsage, f)
		}
	}
	storage, err := config.ParseConsumerStorage(*consumerStorage)
	if err != nil {
		return fmt.Errorf("%w: --consumer-storage %v", errUsage, err)
	}
	opts := bench.Options{Duration: *duration, Dir: *dir, ProfileDir: *profileDir, LegacyHeaders: *legacyHeaders}
	if scaleLike {
		switch {
		case *tenantCount < 1:
			return fmt.Errorf("%w: --tenants %d: want at least 1", errUsage, *tenantCount)
		case *tenantCount > dispatcher.DefaultMaxConsumers:
			return fmt.Errorf("%w: --tenants %d: at most %d (the jobs streams' consumer limit)", errUsage, *tenantCount, dispatcher.DefaultMaxConsumers)
		case !(*perSec > 0) || math.IsInf(*perSec, 0):
			return fmt.Errorf("%w: --per-sec %v: want a positive number of jobs per second", errUsage, *perSec)
		case *natsURL != "" && *cluster != 0:
			return fmt.Errorf("%w: --nats-url and --cluster exclude each other", errUsage)
		case *natsMonitor != "" && *natsURL == "":
			return fmt.Errorf("%w: --nats-monitor needs --nats-url (an embedded server is measured in-process)", errUsage)
		case *cluster != 0 && (*cluster < 3 || *cluster > 5):
			return fmt.Errorf("%w: --cluster %d: want 3 to 5 nodes", errUsage, *cluster)
		case *replicas < 0 || *replicas > 5:
			return fmt.Errorf("%w: --replicas %d: want 1 to 5", errUsage, *replicas)
		case *replicas > 1 && *natsURL == "" && *cluster == 0:
			return fmt.Errorf("%w: --replicas %d needs a cluster (--cluster or --nats-url)", errUsage, *replicas)
		case *cluster != 0 && *replicas > *cluster:
			return fmt.Errorf("%w: --replicas %d on a %d-node cluster", errUsage, *replicas, *cluster)
		}
		opts.ConsumerStorage, opts.Tenants, opts.PerSec = storage, *tenantCount, *perSec
		opts.NATSURL, opts.NATSMonitor, opts.Cluster, opts.Replicas = *natsURL, *natsMonitor, *cluster, *replicas
	}
	fmt.Fprintf(stderr, "orgdispatch bench %s: running (started %s)…\n", name, time.Now().Format(time.TimeOnly))
	if *legacyHeaders && name != "utilization" {
		return fmt.Errorf("%w: --legacy-headers: only the utilization scenario takes it", errUsage)
	}
	if *faults != "" && name != "faults" {
		return fmt.Errorf("%w: --faults: only the faults scenario takes it", errUsage)
	}
	var faultList []string
	if *faults != "" {
		faultList = strings.Split(*faults, ",")
	}
	opts.Faults = faultList
	rep, err := bench.Run(ctx, name, opts)
	if err != nil {
		return err
	}
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if *jsonFile != "" {
		if err := writeFileWith(*jsonFile, rep.WriteJSON); err != nil {
			return err
		}
	}
	if *svgFile != "" {
		if err := writeFileWith(*svgFile, rep.WriteSVG); err != nil {
			return err
		}
	}
	return nil
}

// faultNames lists the faults scenario's faults.
func faultNames() string {
	var names []string
	for _, s := range faultsuite.Scenarios() {
		names = append(names, string(s))
	}
	return strings.Join(names, ",")
}

// writeFileWith creates path and fills it with write.
func writeFileWith(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
