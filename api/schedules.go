package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// ScheduleRequest is the body of POST /v1/tenants/{id}/schedules: a name,
// exactly one of run_at (RFC 3339, in the future) and cron (6 fields:
// second minute hour day-of-month month day-of-week, or @daily etc.), the
// cron's IANA time_zone (default UTC), and the job envelope.
type ScheduleRequest = dispatcher.ScheduleSpec

// SchedulesResponse is the answer to GET /v1/tenants/{id}/schedules.
type SchedulesResponse struct {
	Schedules []dispatcher.Schedule `json:"schedules"`
	Now       time.Time             `json:"now"`
}

// scheduleTenant checks the {id} of a schedules request against the
// token's scope; it answers 403 itself.
func (s *Server) scheduleTenant(w http.ResponseWriter, r *http.Request, right Right) (string, bool) {
	id := r.PathValue("id")
	if sc := scopeOf(r); !sc.tenant(id) {
		s.forbidTenant(w, r, sc, id, right)
		return "", false
	}
	return id, true
}

// addSchedule is POST /v1/tenants/{id}/schedules with a ScheduleRequest.
func (s *Server) addSchedule(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.scheduleTenant(w, r, RightPublish)
	if !ok {
		return
	}
	var req ScheduleRequest
	if status, err := decodeScheduleBody(w, r, &req); err != nil {
		writeError(w, status, err.Error())
		return
	}
	sched, err := s.cfg.Schedules.Add(r.Context(), tenant, req)
	if err != nil {
		s.failSchedule(w, r, err)
		return
	}
	detail := map[string]string{"name": sched.Name, "job_id": sched.Job.ID, "op": sched.Job.Op}
	if sched.RunAt != nil {
		detail["run_at"] = sched.RunAt.Format(time.RFC3339)
	} else {
		detail["cron"], detail["time_zone"] = sched.Cron, sched.TimeZone
	}
	s.log.Info("schedule added through the api", "tenant", tenant, "job_id", sched.Job.ID, "op", sched.Job.Op, "schedule", sched.Name)
	s.audit(r, dispatcher.AuditScheduleAdd, tenant, actionReason(r), detail)
	writeJSON(w, http.StatusCreated, sched)
}

// decodeScheduleBody is decodeBody for a schedule: a job may be as large
// as MaxJobBytes.
func decodeScheduleBody(w http.ResponseWriter, r *http.Request, v *ScheduleRequest) (int, error) {
	return decodeBodyLimit(w, r, v, dispatcher.MaxJobBytes+maxSmallBody)
}

// listSchedules is GET /v1/tenants/{id}/schedules.
func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.scheduleTenant(w, r, RightRead)
	if !ok {
		return
	}
	list, err := s.cfg.Schedules.List(r.Context(), tenant)
	if err != nil {
		s.failSchedule(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SchedulesResponse{Schedules: list, Now: time.Now().UTC()})
}

// getSchedule is GET /v1/tenants/{id}/schedules/{name}.
func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.scheduleTenant(w, r, RightRead)
	if !ok {
		return
	}
	sched, err := s.cfg.Schedules.Get(r.Context(), tenant, r.PathValue("name"))
	if err != nil {
		s.failSchedule(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sched)
}

// cancelSchedule is DELETE /v1/tenants/{id}/schedules/{name}.
func (s *Server) cancelSchedule(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.scheduleTenant(w, r, RightPublish)
	if !ok {
		return
	}
	name := r.PathValue("name")
	if err := s.cfg.Schedules.Cancel(r.Context(), tenant, name); err != nil {
		s.failSchedule(w, r, err)
		return
	}
	s.log.Info("schedule cancelled through the api", "tenant", tenant, "schedule", name)
	s.audit(r, dispatcher.AuditScheduleCancel, tenant, actionReason(r), map[string]string{"name": name})
	w.WriteHeader(http.StatusNoContent)
}

// failSchedule answers a Schedules error: 400 for a bad schedule, 404 for
// an unknown tenant or schedule, 409 for a name in use; the rest as fail.
func (s *Server) failSchedule(w http.ResponseWriter, r *http.Request, err error) {
	var (
		invalid  *dispatcher.InvalidScheduleError
		unknown  *dispatcher.UnknownTenantError
		notFound *dispatcher.ScheduleNotFoundError
		exists   *dispatcher.ScheduleExistsError
	)
	switch {
	case errors.As(err, &invalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.As(err, &unknown):
		writeError(w, http.StatusNotFound, "tenant not found: "+strings.TrimPrefix(err.Error(), "dispatcher: "))
	case errors.As(err, &notFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.As(err, &exists):
		writeError(w, http.StatusConflict, err.Error())
	default:
		s.fail(w, r, err)
	}
}

// AddSchedule adds a schedule of tenant (POST /v1/tenants/{id}/schedules).
// A bad schedule is an *Error of 400, a name in use 409, an unknown tenant
// 404.
func (c *Client) AddSchedule(ctx context.Context, tenant string, spec dispatcher.ScheduleSpec) (dispatcher.Schedule, error) {
	var out dispatcher.Schedule
	err := c.do(ctx, http.MethodPost, "/v1/tenants/"+url.PathEscape(tenant)+"/schedules", nil, spec, &out)
	return out, err
}

// Schedules lists tenant's schedules with their next fire times.
func (c *Client) Schedules(ctx context.Context, tenant string) ([]dispatcher.Schedule, error) {
	var out SchedulesResponse
	err := c.do(ctx, http.MethodGet, "/v1/tenants/"+url.PathEscape(tenant)+"/schedules", nil, nil, &out)
	return out.Schedules, err
}

// Schedule returns one of tenant's schedules (IsNotFound when there is
// none, e.g. a run_at that has fired).
func (c *Client) Schedule(ctx context.Context, tenant, name string) (dispatcher.Schedule, error) {
	var out dispatcher.Schedule
	err := c.do(ctx, http.MethodGet, "/v1/tenants/"+url.PathEscape(tenant)+"/schedules/"+url.PathEscape(name), nil, nil, &out)
	return out, err
}

// CancelSchedule cancels one of tenant's schedules: it never fires again.
// reason (optional) is recorded in the audit trail.
func (c *Client) CancelSchedule(ctx context.Context, tenant, name string, reason ...string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tenants/"+url.PathEscape(tenant)+"/schedules/"+url.PathEscape(name), reasonQuery(strings.Join(reason, " ")), nil, nil)
}
