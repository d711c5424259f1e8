package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// node is one `serve` or `worker` run of the test below.
type clusterNode struct {
	name   string
	out    *outputLines // stdout
	logs   *outputLines // stderr, line by line, for waiting
	all    *lockedBuf   // stderr, all of it
	done   chan error
	cancel context.CancelFunc
}

// waitLog waits for a log line matching re; on timeout it fails the test
// with the node's whole log.
func (n *clusterNode) waitLog(t *testing.T, re *regexp.Regexp, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l := <-n.logs.lines:
			if re.MatchString(l) {
				return
			}
		case err := <-n.done:
			t.Fatalf("%s exited (%v) before logging a line matching %s:\n%s", n.name, err, re, n.all.String())
		case <-timeout:
			t.Fatalf("%s: no log line matching %s within %s:\n%s", n.name, re, d, n.all.String())
		}
	}
}

func startNode(t *testing.T, mode, replica string) *clusterNode {
	t.Helper()
	t.Setenv("ORGDISPATCH_REPLICA_ID", replica)
	ctx, cancel := context.WithCancel(t.Context())
	n := &clusterNode{name: mode, out: newOutputLines(), logs: newOutputLines(), all: &lockedBuf{}, done: make(chan error, 1), cancel: cancel}
	go func() { n.done <- runNode(ctx, mode, nil, n.out, io.MultiWriter(n.all, n.logs)) }()
	// Its configuration is read (before the next node's replica id is set).
	n.logs.waitLine(t, regexp.MustCompile(`msg="starting `+mode+`"`), 10*time.Second)
	return n
}

// Issue 9: `serve` and a `worker` started together against a fresh 3-node
// cluster that has no JetStream meta leader yet both wait (one log line per
// condition, not per attempt), provision concurrently once the cluster has
// formed, and run jobs.
func TestServeAndWorkerStartWithFormingCluster(t *testing.T) {
	sim := platformtest.NewServer(t, platformtest.Config{
		Clients:    []platformtest.ClientCred{{ID: "client_org_1", Secret: "secret_org_1", Org: "org_1"}},
		AutoCreate: true,
	})
	cluster := natstest.NewCluster(t, 3)
	cluster.Start(0)
	onlyEnv(t, map[string]string{
		"ORGDISPATCH_NATS_URL":         cluster.ClientURL(0),
		"ORGDISPATCH_STREAM_REPLICAS":  "3",
		"ORGDISPATCH_TENANTS_FILE":     writeTenants(t, sim.URL),
		"ORGDISPATCH_HTTP_ADDR":        "",
		"ORGDISPATCH_SHUTDOWN_TIMEOUT": "2s",
		"ORGDISPATCH_LOG_LEVEL":        "info",
	})

	serve := startNode(t, "serve", "serve-1")
	worker := startNode(t, "worker", "worker-1")
	// Both wait for JetStream (to answer, then to provision): no meta
	// leader yet.
	waiting := regexp.MustCompile(`level=WARN msg="[^"]*waits and retries"`)
	for _, n := range []*clusterNode{serve, worker} {
		n.waitLog(t, waiting, 30*time.Second)
	}
	if cluster.HasMetaLeader() {
		t.Fatal("the cluster has a meta leader before its other nodes started")
	}
	cluster.Start(1)
	cluster.Start(2)

	started := regexp.MustCompile(`^orgdispatch (serve|worker): replica`)
	for _, n := range []*clusterNode{serve, worker} {
		select {
		case err := <-n.done:
			t.Fatalf("%s exited: %v\n%s", n.name, err, n.all.String())
		default:
		}
		n.out.waitLine(t, started, 60*time.Second)
	}

	// Jobs run, on both replicas.
	nc, err := nats.Connect(cluster.ClientURL(1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := dispatcher.MustNames("")
	pub := dispatcher.NewPublisher(js, names)
	const jobs = 30
	for i := range jobs {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := pub.Publish(ctx, dispatcher.Job{ID: fmt.Sprintf("j%d", i), Tenant: "org_1", Op: "campaign.get", Params: json.RawMessage(`{"campaign_id":"c1"}`)})
		cancel()
		if err != nil {
			t.Fatalf("publish j%d: %v", i, err)
		}
	}
	for i := range jobs {
		if _, err := natstest.WaitJobState(t.Context(), js, names, "org_1", fmt.Sprintf("j%d", i), dispatcher.StateSucceeded, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	succeeded := replicaSuccesses(t, js, names)
	t.Logf("jobs succeeded per replica: %v", succeeded)
	var sum uint64
	for _, n := range succeeded {
		sum += n
	}
	if sum != jobs {
		t.Errorf("replicas report %v succeeded, want %d in all", succeeded, jobs)
	}
	if len(succeeded) != 2 || succeeded[0] == 0 || succeeded[1] == 0 {
		t.Errorf("replicas report %v succeeded: want jobs run on both", succeeded)
	}

	for _, n := range []*clusterNode{serve, worker} {
		n.cancel()
		select {
		case err := <-n.done:
			if err != nil {
				t.Errorf("%s returned %v after cancel", n.name, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s did not stop within 15s of cancel", n.name)
		}
		// One line per condition while waiting (then its summing-up at
		// Info), not one per attempt: no warning repeats.
		warned := map[string]int{}
		for _, line := range strings.Split(n.all.String(), "\n") {
			if m := regexp.MustCompile(`level=WARN msg="([^"]*)"`).FindStringSubmatch(line); m != nil {
				warned[m[1]]++
			}
		}
		t.Logf("%s: warnings logged: %v", n.name, warned)
		if len(warned) == 0 {
			t.Errorf("%s logged no waiting condition", n.name)
		}
		for c, k := range warned {
			if k != 1 {
				t.Errorf("%s logged %q %d times, want once:\n%s", n.name, c, k, n.all.String())
			}
			if !regexp.MustCompile(`level=INFO msg="` + regexp.QuoteMeta(c) + ` \(cleared\)" count=\d+ `).MatchString(n.all.String()) {
				t.Errorf("%s: no summing-up of %q once it cleared:\n%s", n.name, c, n.all.String())
			}
		}
		if strings.Contains(n.all.String(), "level=ERROR") {
			t.Errorf("%s logged errors:\n%s", n.name, n.all.String())
		}
	}
}

// replicaSuccesses reads each replica's succeeded count for org_1 from the
// replicas bucket once both report every job.
func replicaSuccesses(t *testing.T, js jetstream.JetStream, names dispatcher.Names) []uint64 {
	t.Helper()
	admin := dispatcher.NewAdmin(js, names)
	deadline := time.Now().Add(30 * time.Second)
	for {
		lanes, err := admin.Lanes(t.Context())
		var got []uint64
		var sum uint64
		for _, l := range lanes["org_1"] {
			got = append(got, l.Succeeded)
			sum += l.Succeeded
		}
		if err == nil && sum >= 30 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas never reported every job: %v (%v)", got, err)
		}
		select { // the figures are written every heartbeat interval
		case <-time.After(200 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}
