package faultsuite

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// recentCall is how recently a process must have called the platform for a
// fault aimed at it to hit a replica that is doing work.
const recentCall = time.Second

// precondition reports whether the scenario's fault may be injected now:
// every tenant has succeeded within ResumedGap, and the process the fault
// aims at (if one) has called the platform within recentCall.
func (r *run) precondition() error {
	now := time.Now()
	for _, tn := range r.tenants.ids {
		ts := r.platform.successTimes(tn)
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) > ResumedGap {
			return fmt.Errorf("tenant %s has not succeeded within %s", tn, ResumedGap)
		}
	}
	if v := r.victimName(); v != "" {
		if last := r.platform.lastCallOf(v); now.Sub(last) > recentCall {
			return fmt.Errorf("%s has not called the platform within %s", v, recentCall)
		}
	}
	return nil
}

// prepare finds what the fault aims at, before the fault's time is taken:
// for LeaderKill, the node that leads the first tenant's jobs stream now.
func (r *run) prepare(ctx context.Context) error {
	if r.cfg.Scenario != LeaderKill {
		return nil
	}
	s, err := r.js.Stream(ctx, r.names.JobsStream(r.tenants.ids[0]))
	if err != nil {
		return fmt.Errorf("faultsuite: jobs stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("faultsuite: jobs stream info: %w", err)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return fmt.Errorf("faultsuite: the jobs stream has no leader: %+v", info.Cluster)
	}
	if len(info.Cluster.Replicas) != len(r.nodes)-1 {
		return fmt.Errorf("faultsuite: the jobs stream has %d replicas besides its leader, want %d", len(info.Cluster.Replicas), len(r.nodes)-1)
	}
	for _, n := range r.nodes {
		if n.ServerName == info.Cluster.Leader {
			r.leader = n
			return nil
		}
	}
	return fmt.Errorf("faultsuite: the jobs stream's leader %q is none of the cluster's nodes", info.Cluster.Leader)
}

// victimName is the orgdispatch process the fault aims at, if one.
func (r *run) victimName() string {
	switch r.cfg.Scenario {
	case WorkerKill:
		return r.workers[len(r.workers)-1].Name
	case ServeKill:
		return r.serve.Name
	case TokenUnreachable:
		return r.spec.gated
	}
	return ""
}

// inject injects the scenario's fault. It returns what it did and how to
// undo it (nil: the fault is not undone).
func (r *run) inject(ctx context.Context) (string, func(context.Context) error, error) {
	sim := r.platform.Sim
	target := r.tenants.ids[0]
	switch r.cfg.Scenario {
	case WorkerKill:
		w := r.workers[len(r.workers)-1]
		r.killed[w.proc] = true
		return "SIGKILL " + w.Name, nil, w.Kill()
	case ServeKill:
		r.killed[r.serve.proc] = true
		return "SIGKILL serve", nil, r.serve.Kill()
	case NATSKill:
		return r.killNode(ctx, r.nodes[0])
	case LeaderKill:
		return r.killNode(ctx, r.leader)
	case Storm5xx:
		sim.FailNext(clientID(target), 1<<30, 503)
		return fmt.Sprintf("every API request of %s answered 503", target), func(context.Context) error {
			sim.FailNext(clientID(target), 0, 503)
			return nil
		}, nil
	case TokenUnreachable:
		r.gate.shut()
		for _, tn := range r.tenants.ids {
			sim.ExpireTokens(clientID(tn))
		}
		return r.spec.gated + "'s token endpoint unreachable (connection refused), every tenant's tokens expired", func(context.Context) error {
			return r.gate.open()
		}, nil
	case CredentialsRevoked:
		secret := "rotated-" + target
		sim.AddClient(platformtest.ClientCred{ID: clientID(target), Secret: secret, Org: target})
		sim.ExpireTokens(clientID(target))
		return fmt.Sprintf("%s's client secret changed at the platform, its tokens expired; the new secret written to the tenants files later", target), func(context.Context) error {
			r.tenants.secrets[target] = secret
			return r.rewriteTenantsFiles()
		}, nil
	}
	return "", nil, fmt.Errorf("faultsuite: no fault for scenario %q", r.cfg.Scenario)
}

// killNode SIGKILLs a nats-server; undoing it restarts the node (same
// ports, same store) and waits until it serves JetStream again.
func (r *run) killNode(ctx context.Context, n *natsNode) (string, func(context.Context) error, error) {
	if err := n.Kill(); err != nil {
		return "", nil, err
	}
	what := "SIGKILL nats-server"
	if len(r.nodes) > 1 {
		what = fmt.Sprintf("SIGKILL %s (the jobs stream's leader)", n.ServerName)
	}
	return what, func(ctx context.Context) error {
		if err := n.Start(); err != nil {
			return err
		}
		return n.waitReady(ctx)
	}, nil
}

// rewriteTenantsFiles writes every orgdispatch process's tenants file anew
// (it reloads it on change), keeping each one's platform endpoints.
func (r *run) rewriteTenantsFiles() error {
	for _, o := range append([]*odProcess{r.serve}, r.workers...) {
		tmp := o.TenantsFile + ".new"
		if err := os.WriteFile(tmp, r.tenants.yaml(o.apiBase, o.tokenURL), 0o600); err != nil {
			return fmt.Errorf("faultsuite: %w", err)
		}
		if err := os.Rename(tmp, o.TenantsFile); err != nil {
			return fmt.Errorf("faultsuite: %w", err)
		}
	}
	return nil
}
