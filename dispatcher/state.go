package dispatcher

import "time"

// Job states kept in the status bucket.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateRetrying  = "retrying"
	StateSucceeded = "succeeded"
	StateDead      = "dead"
)

// JobStatus is a job's record in the status bucket (key StatusKey(tenant, id)).
type JobStatus struct {
	ID         string    `json:"id"`
	Tenant     string    `json:"tenant"`
	Op         string    `json:"op"`
	State      string    `json:"state"`
	Attempts   int       `json:"attempts"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Updated    time.Time `json:"updated"`
	// FreeDeliveries counts the job's deliveries that did not use up an
	// attempt (handed back on a 429, during a pause, while credentials were
	// rejected, at shutdown). The worker derives the attempt number as the
	// delivery count minus this; it writes the record before the hand-back.
	FreeDeliveries int `json:"free_deliveries,omitempty"`
	// FirstAttempt is when a worker first started the job.
	FirstAttempt time.Time `json:"first_attempt,omitzero"`
	// Seq and Delivery name the delivery that wrote the record: the job's
	// sequence in the jobs stream and that message's delivery count. A
	// worker never replaces a record of a later delivery with one of an
	// earlier (a late write). Zero for records written before a delivery
	// (queued).
	Seq      uint64 `json:"seq,omitempty"`
	Delivery uint64 `json:"delivery,omitempty"`
}

// Lane states, as reported by a worker replica for one tenant.
const (
	LaneRunning             = "running"
	LanePaused              = "paused"
	LaneCredentialsRejected = "credentials rejected"
	LaneTokenUnavailable    = "token endpoint unavailable"
	LaneStopped             = "stopped"
)

// LaneReport is one replica's figures for one tenant's lane.
type LaneReport struct {
	Tenant string `json:"tenant"`
	State  string `json:"state"`
	// Parked is set while the lane is parked on this replica and does not
	// pull (credentials rejected or token endpoint unavailable here): peers
	// do not count this replica in the tenant's org-scoped quota share.
	Parked      bool      `json:"parked,omitempty"`
	PausedUntil time.Time `json:"paused_until,omitzero"`
	InFlight    int       `json:"in_flight"`
	Succeeded   uint64    `json:"succeeded"`
	Retried     uint64    `json:"retried"`
	Dead        uint64    `json:"dead"`
	RateLimited uint64    `json:"rate_limited"` // 429 answers received
	RatePerSec  float64   `json:"rate_per_sec"` // the lane limiter's current rate
	DonePerSec  float64   `json:"done_per_sec"` // recent completions per second
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Heartbeat is what a worker replica writes to the replicas bucket (key: its
// replica id) every heartbeat interval. Replicas learn from it how many peers
// share an org-scoped quota; the API and dashboard read lane figures from it.
type Heartbeat struct {
	Replica string       `json:"replica"`
	At      time.Time    `json:"at"`
	Lanes   []LaneReport `json:"lanes"`
	// Parked lists the tenants whose lanes are parked on this replica (see
	// LaneReport.Parked), so that peers can read it without the lanes.
	Parked []string `json:"parked,omitempty"`
}

// PauseRecord is why a tenant's consumer is paused (key: tenant, in the pauses
// bucket). The pause itself is the consumer's PauseUntil; this adds the reason.
type PauseRecord struct {
	Tenant string    `json:"tenant"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"` // e.g. "429 from platform, Retry-After 60s" or "operator"
	By     string    `json:"by"`     // replica id or "api"
	At     time.Time `json:"at"`
}
