package api

import (
	"fmt"
	"net/http"
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
	limit := dispatcher.DefaultDeadLetterPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > dispatcher.MaxDeadLetterPage {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1-%d", v, dispatcher.MaxDeadLetterPage))
			return
		}
		limit = n
	}
	var after uint64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("after %q: want a sequence number", v))
			return
		}
		after = n
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
	dl, err := s.cfg.Admin.DeadLetter(r.Context(), seq)
	if err != nil {
		s.fail(w, r, err)
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
	res, err := s.cfg.Admin.Replay(r.Context(), seq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("dead letter replayed", "tenant", res.Tenant, "job_id", res.JobID, "op", res.Op, "seq", seq)
	writeJSON(w, http.StatusOK, res)
}

// deleteDeadLetter is DELETE /v1/dlq/{seq}.
func (s *Server) deleteDeadLetter(w http.ResponseWriter, r *http.Request) {
	seq, ok := seqParam(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Admin.DeleteDeadLetter(r.Context(), seq); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("dead letter deleted", "seq", seq)
	w.WriteHeader(http.StatusNoContent)
}
