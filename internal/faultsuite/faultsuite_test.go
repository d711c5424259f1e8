package faultsuite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// keepDirEnv names a directory where the tests keep each run's logs and
// stores (by default they go with the test's temporary directory).
const keepDirEnv = "ORGDISPATCH_FAULTSUITE_DIR"

// binaries are built once for all tests by TestMain.
var binaries Binaries

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "faultsuite-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	binaries, err = Build(ctx, dir, Binaries{})
	cancel()
	if err != nil {
		// Fail loudly: the suite needs both binaries.
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// AssertRecovery switches on the recovery assertion of issue 9: every
// tenant's calls resume within recoveryBound of the fault.
const AssertRecovery = true

// recoveryBound is how soon every tenant's calls must resume: RecoveryTarget
// (5 s), except after the loss of the jobs stream's leader. Then the
// surviving nodes elect a new leader only after nats-server's raft election
// timeout, a random 4–9 s that 2.15.2 hard-codes (server/raft.go,
// minElectionTimeoutDefault and maxElectionTimeoutDefault): no client can
// make it sooner, so the bound is its maximum plus 3 s. docs/reliability.md
// reports that target as missed.
func recoveryBound(s Scenario) time.Duration {
	if s == LeaderKill {
		return 9*time.Second + 3*time.Second
	}
	return RecoveryTarget
}

// Every test is parallel: the kill scenarios wait out AckWait (60 s) for
// the jobs the killed process held, and go test's -parallel (GOMAXPROCS)
// overlaps those waits. The figures the tests log are therefore measured
// beside another run; bench faults measures one fault at a time.

// runScenario runs a short version of a scenario and checks what holds on
// today's code: no job lost, no more duplicates than jobs were in flight at
// the fault, no process exited unexpectedly.
func runScenario(t *testing.T, cfg Config) *Result {
	t.Helper()
	cfg.Binaries = binaries
	cfg.Dir = t.TempDir()
	if keep := os.Getenv(keepDirEnv); keep != "" {
		// Keep the processes' logs and stores for a look afterwards.
		cfg.Dir = filepath.Join(keep, t.Name())
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s in %.1f s\n%s", cfg.Scenario, time.Since(start).Seconds(), res.Text())
	if !res.Drained || res.Lost != 0 {
		t.Errorf("%d jobs lost (drained: %v after %.1f s): want 0", res.Lost, res.Drained, res.DrainSec)
	}
	if res.Published == 0 {
		t.Error("no job published")
	}
	if res.Duplicates > res.InFlightAtFault+res.AckedJustBefore {
		t.Errorf("%d duplicates, more than the %d jobs in flight at the fault and the %d acknowledged within %s before it", res.Duplicates, res.InFlightAtFault, res.AckedJustBefore, AckStateWindow)
	}
	if len(res.Exited) > 0 {
		t.Errorf("processes exited unexpectedly: %v\n(logs in %s)", res.Exited, filepath.Join(cfg.Dir, string(cfg.Scenario)))
	}
	for _, tn := range res.Tenants {
		if bound := recoveryBound(cfg.Scenario); AssertRecovery && !tn.Resumed(bound.Seconds()) {
			t.Errorf("tenant %s: longest stall %.1f s, recovered %v after %.1f s: want calls resumed within %s", tn.Tenant, tn.LongestStallSec, tn.Recovered, tn.RecoverSec, bound)
		}
	}
	return res
}

func TestWorkerKill(t *testing.T) {
	t.Parallel()
	runScenario(t, Config{Scenario: WorkerKill})
}

func TestServeKill(t *testing.T) {
	t.Parallel()
	runScenario(t, Config{Scenario: ServeKill})
}

func TestNATSKillAndRestart(t *testing.T) {
	t.Parallel()
	runScenario(t, Config{Scenario: NATSKill})
}

func TestClusterLeaderKill(t *testing.T) {
	t.Parallel()
	res := runScenario(t, Config{Scenario: LeaderKill})
	if res.RestoreAtSec == 0 {
		t.Error("the killed leader was not restarted")
	}
}

func TestStorm5xxOneTenant(t *testing.T) {
	t.Parallel()
	res := runScenario(t, Config{Scenario: Storm5xx})
	// The other tenants do not notice: this holds on today's code.
	for _, tn := range res.Tenants[1:] {
		if !tn.Resumed(RecoveryTarget.Seconds()) {
			t.Errorf("tenant %s, beside the storm: longest stall %.1f s: want ≤ %s", tn.Tenant, tn.LongestStallSec, RecoveryTarget)
		}
	}
}

func TestTokenUnreachableForOneReplica(t *testing.T) {
	t.Parallel()
	runScenario(t, Config{Scenario: TokenUnreachable})
}

func TestCredentialsRevoked(t *testing.T) {
	t.Parallel()
	res := runScenario(t, Config{Scenario: CredentialsRevoked})
	for _, tn := range res.Tenants[1:] {
		if !tn.Resumed(RecoveryTarget.Seconds()) {
			t.Errorf("tenant %s, beside the revoked one: longest stall %.1f s: want ≤ %s", tn.Tenant, tn.LongestStallSec, RecoveryTarget)
		}
	}
	if !res.Tenants[0].Recovered {
		t.Errorf("tenant %s did not resume after its new secret was written to the tenants files", res.Tenants[0].Tenant)
	}
}

// AssertClusterStart switches on the assertion that serve and a worker
// started together on a fresh cluster both come up. Issue 9 reports that
// both exit (provision bucket orgdispatch_replicas: context deadline
// exceeded); turn this on when the fix lands.
const AssertClusterStart = true

func TestStartTogetherOnFreshCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	res, err := StartTogether(ctx, Config{Binaries: binaries, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s, started together: %+v; jobs %d published, %d succeeded", res.Layout, res.Processes, res.Published, res.Succeeded)
	if res.AllReady && res.Succeeded != res.Published {
		t.Errorf("both ready, but only %d of %d jobs succeeded", res.Succeeded, res.Published)
	}
	if AssertClusterStart && !res.AllReady {
		t.Errorf("not every process came up: %+v", res.Processes)
	}
}
