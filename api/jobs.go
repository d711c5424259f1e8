package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// submitJobs is POST /v1/jobs: one envelope or an array of them. Every job
// is validated (and its tenant looked up) before any is published, so an
// invalid request publishes nothing.
func (s *Server) submitJobs(w http.ResponseWriter, r *http.Request) {
	publish, needsDeadline, bad := s.admission(r)
	if bad != "" {
		writeError(w, http.StatusBadRequest, bad)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	raws, err := splitJobs(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(raws) > s.cfg.MaxJobsPerRequest {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d jobs in one request, more than the limit of %d", len(raws), s.cfg.MaxJobsPerRequest))
		return
	}

	sc := scopeOf(r)
	jobs := make([]dispatcher.Job, len(raws))
	var itemErrs, forbidden []ItemError
	for i, raw := range raws {
		job, err := dispatcher.DecodeJob(raw)
		if err == nil {
			err = job.Validate("")
		}
		if err == nil && needsDeadline && job.Deadline == nil {
			err = errors.New("admission=deadline: the job has no deadline")
		}
		if err == nil && !sc.tenant(job.Tenant) {
			forbidden = append(forbidden, ItemError{Index: i, ID: job.ID,
				Error: fmt.Sprintf("token %q may not publish for tenant %q", sc.name, job.Tenant)})
			continue
		}
		if err == nil {
			var known bool
			known, err = s.cfg.Admin.TenantExists(r.Context(), job.Tenant)
			if err != nil {
				writeError(w, http.StatusServiceUnavailable, "look up tenants: "+err.Error())
				return
			}
			if !known {
				err = fmt.Errorf("unknown tenant %q", job.Tenant)
			}
		}
		if err != nil {
			itemErrs = append(itemErrs, ItemError{Index: i, ID: job.ID, Error: err.Error()})
		}
		jobs[i] = job
	}
	if len(forbidden) > 0 {
		s.refused(r, sc.name, jobs[forbidden[0].Index].Tenant, forbidden[0].Error)
		writeJSON(w, http.StatusForbidden, ErrorResponse{
			Error:  fmt.Sprintf("%d of %d jobs are for tenants this token may not publish for; none was published", len(forbidden), len(jobs)),
			Errors: forbidden,
		})
		return
	}
	if len(itemErrs) > 0 {
		writeJSON(w, http.StatusBadRequest, ErrorResponse{
			Error:  fmt.Sprintf("%d of %d jobs are invalid; none was published", len(itemErrs), len(jobs)),
			Errors: itemErrs,
		})
		return
	}

	resp := SubmitResponse{Accepted: []string{}, Duplicates: []string{}}
	for i, job := range jobs {
		res, err := publish(r.Context(), job)
		if err != nil {
			notPublished := make([]string, 0, len(jobs)-i)
			for _, j := range jobs[i:] {
				notPublished = append(notPublished, j.ID)
			}
			status, why := http.StatusServiceUnavailable, "NATS did not take job"
			var (
				invalid *dispatcher.InvalidJobError
				full    *dispatcher.BacklogFullError
				unknown *dispatcher.UnknownTenantError
				foreign *dispatcher.ForeignDuplicateError
				late    *dispatcher.DeadlineUnreachableError
				refusal *DeadlineRefusal
			)
			switch {
			case errors.As(err, &late):
				status, why, refusal = http.StatusUnprocessableEntity, "deadline cannot be met at job", newDeadlineRefusal(late)
			case errors.As(err, &invalid): // e.g. larger than the stream's message limit
				status, why = http.StatusBadRequest, "the jobs stream refused job"
			case errors.As(err, &full):
				// The caller's own tenant is full: its answer says so; a
				// log line per refused request would flood the log.
				status, why = http.StatusTooManyRequests, "tenant's backlog is full at job"
				w.Header().Set("Retry-After", "10")
			case errors.As(err, &unknown):
				status, why = http.StatusNotFound, "unknown tenant at job"
			case errors.As(err, &foreign):
				status, why = http.StatusConflict, "another tenant's message holds the id of job"
			default:
				s.log.Warn("publish job failed", "tenant", job.Tenant, "job_id", job.ID, "op", job.Op, "error", err)
				w.Header().Set("Retry-After", "1")
			}
			writeJSON(w, status, ErrorResponse{
				Error:        fmt.Sprintf("%s %d (%s): %v; %d published before it, %d not published", why, i, job.ID, err, i, len(notPublished)),
				Errors:       []ItemError{{Index: i, ID: job.ID, Error: err.Error()}},
				Accepted:     resp.Accepted,
				Duplicates:   resp.Duplicates,
				NotPublished: notPublished,
				Deadline:     refusal,
			})
			return
		}
		if res.Duplicate {
			resp.Duplicates = append(resp.Duplicates, res.ID)
		} else {
			resp.Accepted = append(resp.Accepted, res.ID)
		}
	}
	writeJSON(w, http.StatusAccepted, resp)
}

// splitJobs splits a request body into its job envelopes: one object, or an
// array of them.
func splitJobs(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("empty request body: want a job object or an array of them")
	case trimmed[0] == '{':
		return []json.RawMessage{trimmed}, nil
	case trimmed[0] == '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("malformed JSON: %v", err)
		}
		if len(raws) == 0 {
			return nil, errors.New("empty array: no jobs to publish")
		}
		return raws, nil
	}
	return nil, errors.New("malformed JSON: want a job object or an array of them")
}

// getJob is GET /v1/jobs/{id}.
func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sts, err := s.cfg.Admin.Job(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sc := scopeOf(r)
	mine := sts[:0]
	for _, st := range sts {
		if sc.tenant(st.Tenant) {
			mine = append(mine, st)
		}
	}
	if sts = mine; len(sts) == 0 { // other tenants' jobs do not exist for this token
		s.fail(w, r, dispatcher.ErrJobNotFound)
		return
	}
	writeJSON(w, http.StatusOK, JobResponse{ID: id, Jobs: sts})
}

// fail answers an Admin error: 404 for what does not exist, 400 for an
// invalid job, 503 when NATS cannot answer, 500 otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *dispatcher.InvalidJobError
	switch {
	case errors.Is(err, dispatcher.ErrTenantNotFound):
		writeError(w, http.StatusNotFound, "tenant not found")
	case errors.Is(err, dispatcher.ErrJobNotFound):
		writeError(w, http.StatusNotFound, "job not found")
	case errors.Is(err, dispatcher.ErrDeadLetterNotFound):
		writeError(w, http.StatusNotFound, "dead letter not found")
	case errors.As(err, &invalid):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		writeError(w, http.StatusServiceUnavailable, "request cancelled")
	case unavailable(err):
		s.log.Warn("nats unavailable", "path", r.URL.Path, "error", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "NATS unavailable: "+err.Error())
	default:
		s.log.Error("request failed", "path", r.URL.Path, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// unavailable reports whether err means NATS (or its JetStream resources)
// could not answer now, rather than a bug.
func unavailable(err error) bool {
	for _, target := range []error{
		context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders, nats.ErrConnectionClosed,
		nats.ErrDisconnected, nats.ErrConnectionReconnecting, jetstream.ErrNoStreamResponse,
		jetstream.ErrStreamNotFound, jetstream.ErrBucketNotFound, jetstream.ErrJetStreamNotEnabled,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == http.StatusServiceUnavailable
}
