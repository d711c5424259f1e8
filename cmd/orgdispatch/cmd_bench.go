package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/internal/bench"
	"github.com/orgdispatch/orgdispatch/internal/config"
	"github.com/orgdispatch/orgdispatch/internal/faultsuite"
)

func init() {
	register(command{
		name:    "bench",
		summary: "run a benchmark scenario (isolation, utilization, pause, overhead, scale, faults)",
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
	profileDir := fs.String("profile-dir", "", "write the CPU profiles of overhead and scale phases to this directory")
	dir := fs.String("dir", "", "parent of the temporary JetStream store directories (default: the system's)")
	consumerStorage := fs.String("consumer-storage", "file", "tenant consumers' storage in the scale scenario: file or memory (as ORGDISPATCH_CONSUMER_STORAGE)")
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
	storage, err := config.ParseConsumerStorage(*consumerStorage)
	if err != nil {
		return fmt.Errorf("%w: --consumer-storage %v", errUsage, err)
	}
	if storage != jetstream.FileStorage && name != "scale" {
		return fmt.Errorf("%w: --consumer-storage: only the scale scenario takes it", errUsage)
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
	rep, err := bench.Run(ctx, name, bench.Options{Duration: *duration, Dir: *dir, ProfileDir: *profileDir, ConsumerStorage: storage, LegacyHeaders: *legacyHeaders, Faults: faultList})
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
