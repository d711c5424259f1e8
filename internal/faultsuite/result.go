package faultsuite

import "time"

// Result is what one scenario run measured.
type Result struct {
	Scenario Scenario `json:"scenario"`
	// Fault describes what was done, e.g. "SIGKILL worker-2".
	Fault string `json:"fault"`
	// Layout lists the processes, e.g. "nats-server ×1, serve, worker ×2".
	Layout string `json:"layout"`
	// Tenants and their offered load.
	TenantCount int     `json:"tenants"`
	RatePerSec  float64 `json:"rate_per_tenant_per_sec"`
	Backlog     int     `json:"backlog_per_tenant"`
	Concurrency int     `json:"concurrency"`
	LatencyMs   float64 `json:"platform_latency_ms"`

	// LoadSec is how long jobs were published; FaultAtSec when the fault
	// was injected and RestoreAtSec when it was undone (the server
	// restarted, the storm ended, the gate reopened, the new secret
	// written; 0: not undone), since the load started.
	LoadSec      float64 `json:"load_sec"`
	FaultAtSec   float64 `json:"fault_at_sec"`
	RestoreAtSec float64 `json:"restore_at_sec,omitempty"`
	// DrainSec is how long after the load ended the last job was accounted
	// for (or DrainTimeout, when not all were: then Drained is false).
	DrainSec float64 `json:"drain_sec"`
	Drained  bool    `json:"drained"`

	// InFlightAtFault is the jobs delivered and not yet acknowledged
	// (NumAckPending of the tenants' consumers) just before the fault.
	InFlightAtFault int `json:"in_flight_at_fault"`
	// AckedJustBefore is the jobs whose 2xx came within AckStateWindow
	// before a fault that kills a nats-server (nats-kill, leader-kill):
	// their acknowledgements may have been taken but not yet written, so
	// the restarted or new leader can deliver them again. 0 for the other
	// faults.
	AckedJustBefore int `json:"acked_just_before_fault,omitempty"`
	Published       int `json:"published"`
	Succeeded       int `json:"succeeded"`
	DeadLettered    int `json:"dead_lettered"`
	// Lost is published jobs that neither succeeded nor were dead-lettered
	// by the end of the drain.
	Lost int `json:"lost"`
	// Duplicates is the 2xx answers beyond the first for the same job.
	Duplicates int `json:"duplicates"`
	// Unconfirmed is jobs whose publish was never acknowledged (the load
	// ended while the server was unreachable); not counted as published.
	Unconfirmed int `json:"unconfirmed"`

	Tenants []TenantResult `json:"per_tenant"`
	// Exited names orgdispatch or nats-server processes that ended without
	// being killed by the fault.
	Exited []string `json:"unexpected_exits,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

// AckStateWindow is how far back from a nats-server kill a job's
// acknowledgement may be lost. nats-server writes a file-storage consumer's
// state (its acknowledgements) at most every 100 ms (server/filestore.go,
// consumerFileStore.flushLoop, v2.15), and an ack is sent a moment after
// the platform's 2xx: a SIGKILL loses what is not written yet, and the jobs
// come again as duplicates though they were no longer in flight.
const AckStateWindow = 250 * time.Millisecond

// TenantResult is one tenant's figures of a run.
type TenantResult struct {
	Tenant string `json:"tenant"`
	// Targeted is true for the tenant a tenant-scoped fault (5xx storm,
	// credentials revoked) hits.
	Targeted        bool `json:"targeted"`
	InFlightAtFault int  `json:"in_flight_at_fault"`
	// ConsumerLeader is the server that led the tenant's consumer just
	// before the fault (in a cluster; "" for a single server).
	ConsumerLeader string `json:"consumer_leader,omitempty"`
	Published      int    `json:"published"`
	Succeeded      int    `json:"succeeded"`
	DeadLettered   int    `json:"dead_lettered"`
	Lost           int    `json:"lost"`
	Duplicates     int    `json:"duplicates"`
	Unconfirmed    int    `json:"unconfirmed"`
	// SlowestJobSec is the longest time from a job's publish to its first
	// success: the jobs a killed replica held wait here (AckWait), beside
	// the backlog's queueing.
	SlowestJobSec float64 `json:"slowest_job_sec"`
	// LongestStallSec is the largest gap between consecutive successful
	// calls of the tenant during the load, starting StallAtSec after the
	// load started; StallOpen when it had not ended when the load did (the
	// stall is then at least that long).
	LongestStallSec float64 `json:"longest_stall_sec"`
	StallAtSec      float64 `json:"stall_at_sec"`
	StallOpen       bool    `json:"stall_open"`
	// RecoverSec is how long after the fault (for the targeted tenant:
	// after the fault was undone) the tenant's calls flowed again (see
	// ResumedGap); Recovered is false when they had not by the load's end.
	RecoverSec float64 `json:"recover_sec"`
	Recovered  bool    `json:"recovered"`
}

// Resumed reports whether the tenant resumed within d: recovered within d,
// and (unless targeted, whose stall is the fault itself) no stall longer.
func (t TenantResult) Resumed(d float64) bool {
	if !t.Recovered || t.RecoverSec > d {
		return false
	}
	// A stall still open when the load ended is a lower bound; one longer
	// than ResumedGap already makes Recovered false, so an open gap of less
	// (the last moments of the load, not the fault) is no stall to judge.
	return t.Targeted || t.LongestStallSec <= d
}
