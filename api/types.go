package api

import (
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// SubmitResponse is the 202 answer to POST /v1/jobs: the ids of the jobs
// published, and of those the jobs stream already held (same tenant and id
// within the duplicate window), which are not run twice.
type SubmitResponse struct {
	Accepted   []string `json:"accepted"`
	Duplicates []string `json:"duplicates"`
}

// ItemError says why one job of a POST /v1/jobs request is invalid. Index
// is its position in the request's array (0 for a single envelope).
type ItemError struct {
	Index int    `json:"index"`
	ID    string `json:"id,omitempty"`
	Error string `json:"error"`
}

// ErrorResponse is the body of every error answer. Errors lists the invalid
// jobs of a 400 answer to POST /v1/jobs. When publishing fails part way
// through a request (503), Accepted and Duplicates say which of its jobs
// were published before the failure and NotPublished which were not.
type ErrorResponse struct {
	Error        string      `json:"error"`
	Errors       []ItemError `json:"errors,omitempty"`
	Accepted     []string    `json:"accepted,omitempty"`
	Duplicates   []string    `json:"duplicates,omitempty"`
	NotPublished []string    `json:"not_published,omitempty"`
	// Deadline is set on a 422 answer of drain-time admission
	// (admission=deadline): the job refused and the estimate.
	Deadline *DeadlineRefusal `json:"deadline_unreachable,omitempty"`
}

// JobResponse is the answer to GET /v1/jobs/{id}: the status of every
// tenant's job with that id (ids are unique per tenant only).
type JobResponse struct {
	ID   string                 `json:"id"`
	Jobs []dispatcher.JobStatus `json:"jobs"`
}

// TenantsResponse is the answer to GET /v1/tenants: every tenant, sorted by
// id, with the server's clock (to count pauses down without trusting the
// browser's) and the scaling signal over them: the dispatchable backlog
// (backlog of tenants not paused), the scalable backlog and the replicas
// wanted (dispatcher.ScalingSignal).
type TenantsResponse struct {
	Tenants []dispatcher.TenantStatus `json:"tenants"`
	Now     time.Time                 `json:"now"`
	dispatcher.ScalingSignal
}

// PauseRequest is the body of POST /v1/tenants/{id}/pause. Duration is a Go
// duration ("90s", "5m", "1h30m"), required, at most Config.MaxPause; Reason
// is optional.
type PauseRequest struct {
	Duration string `json:"duration"`
	Reason   string `json:"reason,omitempty"`
}

// DeadLettersResponse is the answer to GET /v1/dlq. NextAfter is the after
// parameter of the next page; an empty page is the end.
type DeadLettersResponse struct {
	DeadLetters []dispatcher.DeadLetter `json:"dead_letters"`
	NextAfter   uint64                  `json:"next_after"`
}
