package faultsuite

import "time"

// Scenario names one fault.
type Scenario string

// The scenarios.
const (
	// WorkerKill SIGKILLs one of two worker replicas (beside serve) under
	// load; it is not restarted.
	WorkerKill Scenario = "worker-kill"
	// ServeKill SIGKILLs serve (beside two worker replicas); it is not
	// restarted.
	ServeKill Scenario = "serve-kill"
	// NATSKill SIGKILLs the single external nats-server and restarts it
	// (same port, same store) FaultFor later.
	NATSKill Scenario = "nats-kill"
	// LeaderKill SIGKILLs the node of a 3-node JetStream cluster (R3
	// streams and buckets) that leads the jobs stream, and restarts it
	// FaultFor later.
	LeaderKill Scenario = "leader-kill"
	// Storm5xx answers every API request of one tenant's OAuth client 503
	// for FaultFor.
	Storm5xx Scenario = "5xx-storm"
	// TokenUnreachable cuts one worker replica (of serve + one worker) off
	// the token endpoint for FaultFor and expires every tenant's tokens, so
	// that each replica needs a new one: serve gets it, the cut-off
	// replica cannot.
	TokenUnreachable Scenario = "token-unreachable"
	// CredentialsRevoked changes one tenant's client secret at the
	// platform and expires its tokens; FaultFor later the operator writes
	// the new secret into every process's tenants file.
	CredentialsRevoked Scenario = "credentials-revoked"
)

// Scenarios lists every scenario, in the order bench runs them.
func Scenarios() []Scenario {
	return []Scenario{WorkerKill, ServeKill, NATSKill, LeaderKill, Storm5xx, TokenUnreachable, CredentialsRevoked}
}

// spec is how a scenario lays out its processes and what its fault does.
type spec struct {
	natsNodes int // 1: a single server; 3: a cluster with R3 streams
	workers   int // worker processes beside serve
	// gated names the process whose token endpoint goes through the token
	// gate ("" for none).
	gated string
	// targeted is true when the fault hits the first tenant only.
	targeted bool
	// faultFor is the default time until the fault is undone; 0: never.
	faultFor time.Duration
}

var specs = map[Scenario]spec{
	WorkerKill:         {natsNodes: 1, workers: 2},
	ServeKill:          {natsNodes: 1, workers: 2},
	NATSKill:           {natsNodes: 1, workers: 1, faultFor: 2 * time.Second},
	LeaderKill:         {natsNodes: 3, workers: 1, faultFor: 2 * time.Second},
	Storm5xx:           {natsNodes: 1, workers: 1, targeted: true, faultFor: 5 * time.Second},
	TokenUnreachable:   {natsNodes: 1, workers: 1, gated: "worker-1", faultFor: 10 * time.Second},
	CredentialsRevoked: {natsNodes: 1, workers: 1, targeted: true, faultFor: 5 * time.Second},
}
