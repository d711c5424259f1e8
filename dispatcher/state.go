package dispatcher

import (
	"strconv"
	"time"
)

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
	ID         string `json:"id"`
	Tenant     string `json:"tenant"`
	Op         string `json:"op"`
	State      string `json:"state"`
	Attempts   int    `json:"attempts"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Error      string `json:"error,omitempty"`
	// CorrelationID is the platform's ININ-Correlation-Id of the answer this
	// record is about (Genesys support asks for it).
	CorrelationID string    `json:"correlation_id,omitempty"`
	Updated       time.Time `json:"updated"`
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
	// Stream and Consumer name where that delivery came from: the jobs
	// stream, and when its consumer was created. A consumer created again
	// (nats-server forgets a memory-storage one when it restarts) or a job
	// moved to another stream (the upgrade) counts deliveries from 1 again;
	// DeliveryBase holds the deliveries made before, by earlier consumers or
	// streams, so that the attempt number (DeliveryBase + Delivery −
	// FreeDeliveries) goes on where it was.
	Stream       string    `json:"stream,omitempty"`
	Consumer     time.Time `json:"consumer_created,omitzero"`
	DeliveryBase int       `json:"delivery_base,omitempty"`
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
	// RateWaiting is how many of InFlight wait on the lane's rate limiter
	// now: a lane whose jobs wait there is held back by its rate, one whose
	// slots are all at the platform by its concurrency (TenantDrain.Saturated).
	RateWaiting int     `json:"rate_waiting,omitempty"`
	Concurrency int     `json:"concurrency"` // the lane's concurrency: jobs it runs at once
	Succeeded   uint64  `json:"succeeded"`
	Retried     uint64  `json:"retried"`
	Dead        uint64  `json:"dead"`
	RateLimited uint64  `json:"rate_limited"` // 429 answers received
	RatePerSec  float64 `json:"rate_per_sec"` // the lane limiter's current rate
	// RateSource says where RatePerSec comes from: "configured", or for
	// rate: auto "limits API", "429 limit" or "legacy headers".
	RateSource  string    `json:"rate_source,omitempty"`
	DonePerSec  float64   `json:"done_per_sec"` // recent completions per second
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Heartbeat is a worker replica's liveness record in the replicas bucket
// (key: its replica id), rewritten every heartbeat interval. Replicas count
// each other from it to share org-scoped quotas, so it stays small whatever
// the number of tenants: the lanes' figures go to the lanes bucket, in
// LanePages (Pages of them, keys LanePageKey(replica, 0…Pages-1)).
type Heartbeat struct {
	Replica string    `json:"replica"`
	At      time.Time `json:"at"`
	// Pages is how many LanePages hold this replica's lane figures now.
	// Pages of a higher number, left from when it had more tenants, are
	// stale.
	Pages int `json:"pages,omitempty"`
	// Parked lists the tenants whose lane is parked on this replica
	// (credentials rejected there, or its token endpoint unreachable from
	// there), at most 1,000: peers leave the replica out of those tenants'
	// org-scoped quota shares.
	Parked []string `json:"parked,omitempty"`
	// Lanes is set only by replicas of earlier versions, which wrote every
	// lane's figures into this one value (and failed past the server's
	// message size limit). Readers still take them from here.
	Lanes []LaneReport `json:"lanes,omitempty"`
}

// LanePage is one page of a replica's lane figures in the lanes bucket (key
// LanePageKey(replica, page)). A page holds as many lanes as fit in
// MaxLanePageBytes, in tenant order; a page whose figures have not changed
// is not rewritten every heartbeat, so At is when this page was last
// written. A tenant found in two pages of one replica (its lanes moved from
// one page to the next between two writes) counts once, from the page
// written last.
type LanePage struct {
	Replica string       `json:"replica"`
	Page    int          `json:"page"`
	At      time.Time    `json:"at"`
	Lanes   []LaneReport `json:"lanes"`
}

// MaxLanePageBytes bounds one encoded LanePage, far below the server's
// default message size limit (1 MiB), whatever the number of tenants.
const MaxLanePageBytes = 64 << 10

// MaxLaneErrorBytes caps a LaneReport's LastError: an error body quoted in
// full would make one lane's figures as large as the platform's answer.
const MaxLaneErrorBytes = 512

// LanePageKey is the lanes bucket key of one page of a replica's figures.
func LanePageKey(replica string, page int) string { return replica + "." + strconv.Itoa(page) }

// PauseRecord is why a tenant's consumer is paused (key: tenant, in the pauses
// bucket). The pause itself is the consumer's PauseUntil; this adds the reason.
type PauseRecord struct {
	Tenant string    `json:"tenant"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"` // e.g. "429 from platform, Retry-After 60s" or "operator"
	By     string    `json:"by"`     // replica id or "api"
	At     time.Time `json:"at"`
}
