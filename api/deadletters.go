package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// listDeadLetters is GET /v1/dlq?tenant=&limit=&after=.
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tenant := q.Get("tenant")
	if tenant != "" && !dispatcher.ValidTenantID(tenant) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("tenant %q: want 1-64 of A-Z a-z 0-9 _ -", tenant))
		return
	}
	tenant, ok := s.readableTenant(w, r, tenant)
	if !ok {
		return
	}
	limit, after, ok := pageParams(w, q, dispatcher.DefaultDeadLetterPage, dispatcher.MaxDeadLetterPage)
	if !ok {
		return
	}
	dls, err := s.cfg.Admin.DeadLetters(r.Context(), tenant, limit, after)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := DeadLettersResponse{DeadLetters: dls, NextAfter: after}
	if len(dls) > 0 {
		resp.NextAfter = dls[len(dls)-1].Seq
	}
	writeJSON(w, http.StatusOK, resp)
}

// seqParam parses the {seq} path value; it answers 400 itself when invalid.
func seqParam(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("sequence %q: want a positive integer", r.PathValue("seq")))
		return 0, false
	}
	return seq, true
}

// getDeadLetter is GET /v1/dlq/{seq}.
func (s *Server) getDeadLetter(w http.ResponseWriter, r *http.Request) {
	seq, ok := seqParam(w, r)
	if !ok {
		return
	}
	dl, ok := s.deadLetterInScope(w, r, seq, RightRead)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, dl)
}

// replayDeadLetter is POST /v1/dlq/{seq}/replay.
func (s *Server) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	seq, ok := seqParam(w, r)
	if !ok {
		return
	}
	dl, ok := s.deadLetterInScope(w, r, seq, RightDLQ)
	if !ok {
		return
	}
	res, err := s.cfg.Admin.Replay(r.Context(), seq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("dead letter replayed", "tenant", res.Tenant, "job_id", res.JobID, "op", res.Op, "seq", seq)
	s.audit(r, dispatcher.AuditDLQReplay, res.Tenant, actionReason(r), map[string]string{
		"seq": strconv.FormatUint(seq, 10), "job_id": res.JobID, "op": res.Op, "job_seq": strconv.FormatUint(res.JobSeq, 10), "error_class": dl.ErrorClass})
	writeJSON(w, http.StatusOK, res)
}

// deleteDeadLetter is DELETE /v1/dlq/{seq}.
func (s *Server) deleteDeadLetter(w http.ResponseWriter, r *http.Request) {
	seq, ok := seqParam(w, r)
	if !ok {
		return
	}
	dl, ok := s.deadLetterInScope(w, r, seq, RightDLQ)
	if !ok {
		return
	}
	if err := s.cfg.Admin.DeleteDeadLetter(r.Context(), seq); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("dead letter deleted", "seq", seq)
	s.audit(r, dispatcher.AuditDLQDelete, dl.Tenant, actionReason(r), map[string]string{
		"seq": strconv.FormatUint(seq, 10), "job_id": dl.JobID, "op": dl.Op, "error_class": dl.ErrorClass})
	w.WriteHeader(http.StatusNoContent)
}

// readableTenant is the tenant a listing (dead letters, audit) of the
// request's token covers: tenant when the token may read it, the token's
// only tenant when tenant is "" and it has one, "" (all) for a token of
// every tenant. Otherwise it answers 403 or 400 itself.
func (s *Server) readableTenant(w http.ResponseWriter, r *http.Request, tenant string) (string, bool) {
	sc := scopeOf(r)
	switch {
	case tenant != "" && !sc.tenant(tenant):
		s.forbidTenant(w, r, sc, tenant, RightRead)
		return "", false
	case tenant != "" || sc.all:
		return tenant, true
	}
	if only, ok := sc.only(); ok {
		return only, true
	}
	writeError(w, http.StatusBadRequest, fmt.Sprintf("token %q reads tenants %s only: pass ?tenant=", sc.name, sc.tenantList()))
	return "", false
}

// deadLetterInScope reads dead letter seq for a request whose token holds
// right; a dead letter of a tenant outside the token's scope is answered
// as not found (its existence is not the token's business), and recorded.
func (s *Server) deadLetterInScope(w http.ResponseWriter, r *http.Request, seq uint64, right Right) (dispatcher.DeadLetter, bool) {
	dl, err := s.cfg.Admin.DeadLetter(r.Context(), seq)
	if err != nil {
		s.fail(w, r, err)
		return dl, false
	}
	if sc := scopeOf(r); !sc.tenant(dl.Tenant) {
		s.refused(r, sc.name, dl.Tenant, fmt.Sprintf("token %q may not %s tenant %q", sc.name, right, dl.Tenant))
		writeError(w, http.StatusNotFound, "dead letter not found")
		return dl, false
	}
	return dl, true
}

// pageParams reads a listing's limit (1–max, default def) and after (a
// stream sequence, 0 for none) query parameters; a bad value is answered 400
// and ok is false.
func pageParams(w http.ResponseWriter, q url.Values, def, max int) (limit int, after uint64, ok bool) {
	limit = def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1-%d", v, max))
			return 0, 0, false
		}
		limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("after %q: want a sequence number", v))
			return 0, 0, false
		}
		after = n
	}
	return limit, after, true
}
