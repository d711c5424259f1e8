package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// Admission modes of POST /v1/jobs (its admission query parameter).
const (
	// AdmissionBacklog, the default: a job is refused only when its
	// tenant's backlog is at max_backlog.
	AdmissionBacklog = "backlog"
	// AdmissionDeadline adds drain-time admission: a job that its tenant
	// would not finish by its deadline, at its current rate with what is
	// ahead of it in its class, is refused (422, DeadlineRefusal). Every
	// job of the request needs a deadline.
	AdmissionDeadline = "deadline"
)

// DeadlineRefusal is the deadline_unreachable object of a 422 answer to
// POST /v1/jobs?admission=deadline: the job refused and the estimate it
// was refused on.
type DeadlineRefusal struct {
	Tenant   string              `json:"tenant"`
	JobID    string              `json:"job_id"`
	Priority dispatcher.Priority `json:"priority"`
	Deadline time.Time           `json:"deadline"`
	// At is when the estimate was made; EstimateSeconds how long from then
	// until the job would be done (null: no lane can run the tenant's jobs
	// now); EstimatedDone when that is.
	At              time.Time  `json:"at"`
	EstimateSeconds *float64   `json:"estimate_seconds"`
	EstimatedDone   *time.Time `json:"estimated_done,omitempty"`
	// Ahead is how many jobs of its class were queued before it.
	Ahead                 uint64  `json:"ahead"`
	RatePerSec            float64 `json:"rate_per_sec"`
	PauseRemainingSeconds float64 `json:"pause_remaining_seconds,omitempty"`
}

func newDeadlineRefusal(e *dispatcher.DeadlineUnreachableError) *DeadlineRefusal {
	r := &DeadlineRefusal{
		Tenant: e.Tenant, JobID: e.JobID, Priority: e.Priority, Deadline: e.Deadline.UTC(), At: e.At.UTC(),
		Ahead: e.Ahead, RatePerSec: e.RatePerSec, PauseRemainingSeconds: e.Pause.Seconds(),
	}
	if !e.Unbounded {
		s, done := e.Estimate.Seconds(), e.At.Add(e.Estimate).UTC()
		r.EstimateSeconds, r.EstimatedDone = &s, &done
	}
	return r
}

// Err is the refusal as the Publisher reported it.
func (r *DeadlineRefusal) Err() *dispatcher.DeadlineUnreachableError {
	e := &dispatcher.DeadlineUnreachableError{
		Tenant: r.Tenant, JobID: r.JobID, Priority: r.Priority, Deadline: r.Deadline, At: r.At,
		Ahead: r.Ahead, RatePerSec: r.RatePerSec, Pause: time.Duration(r.PauseRemainingSeconds * float64(time.Second)),
		Unbounded: r.EstimateSeconds == nil,
	}
	if r.EstimateSeconds != nil {
		e.Estimate = time.Duration(*r.EstimateSeconds * float64(time.Second))
	}
	return e
}

// publishFunc is how submitJobs publishes under the request's admission
// mode.
type publishFunc func(ctx context.Context, job dispatcher.Job) (dispatcher.PublishResult, error)

// admission reads POST /v1/jobs's admission parameter: the publish
// function, whether jobs need a deadline, or a 400 message.
func (s *Server) admission(r *http.Request) (publish publishFunc, needsDeadline bool, bad string) {
	switch mode := r.URL.Query().Get("admission"); mode {
	case "", AdmissionBacklog:
		return s.cfg.Publisher.Publish, false, ""
	case AdmissionDeadline:
		return s.cfg.Publisher.PublishWithinDeadline, true, ""
	default:
		return nil, false, fmt.Sprintf("admission %q: want %q or %q", mode, AdmissionBacklog, AdmissionDeadline)
	}
}
