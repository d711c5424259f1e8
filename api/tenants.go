package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// maxSmallBody caps the bodies of the admin endpoints.
const maxSmallBody = 64 << 10

// listTenants is GET /v1/tenants.
func (s *Server) listTenants(w http.ResponseWriter, r *http.Request) {
	ts, err := s.cfg.Admin.Tenants(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sc := scopeOf(r)
	mine := make([]dispatcher.TenantStatus, 0, len(ts))
	for _, t := range ts {
		if sc.tenant(t.ID) {
			mine = append(mine, t)
		}
	}
	ts = mine
	resp := TenantsResponse{Tenants: ts, Now: time.Now().UTC(), ScalingSignal: dispatcher.Scaling(ts)}
	writeJSON(w, http.StatusOK, resp)
}

// getTenant is GET /v1/tenants/{id}.
func (s *Server) getTenant(w http.ResponseWriter, r *http.Request) {
	if sc := scopeOf(r); !sc.tenant(r.PathValue("id")) {
		s.forbidTenant(w, r, sc, r.PathValue("id"), RightRead)
		return
	}
	ts, err := s.cfg.Admin.Tenant(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

// pauseTenant is POST /v1/tenants/{id}/pause with a PauseRequest.
func (s *Server) pauseTenant(w http.ResponseWriter, r *http.Request) {
	if sc := scopeOf(r); !sc.tenant(r.PathValue("id")) {
		s.forbidTenant(w, r, sc, r.PathValue("id"), RightPause)
		return
	}
	var req PauseRequest
	if status, err := decodeBody(w, r, &req); err != nil {
		writeError(w, status, err.Error())
		return
	}
	if req.Duration == "" {
		writeError(w, http.StatusBadRequest, `duration is required, e.g. {"duration":"5m","reason":"maintenance"}`)
		return
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("duration %q: want a duration such as 90s, 5m or 1h", req.Duration))
		return
	}
	if d <= 0 || d > s.cfg.MaxPause {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("duration %s: want more than 0 and at most %s", d, s.cfg.MaxPause))
		return
	}
	if len(req.Reason) > MaxReasonLength || !utf8.ValidString(req.Reason) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reason: want at most %d bytes of UTF-8", MaxReasonLength))
		return
	}
	if req.Reason == "" {
		req.Reason = "paused by operator"
	}
	ts, err := s.cfg.Admin.Pause(r.Context(), r.PathValue("id"), d, req.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("tenant paused through the api", "tenant", ts.ID, "until", ts.PausedUntil, "reason", req.Reason)
	s.audit(r, dispatcher.AuditPause, ts.ID, req.Reason, map[string]string{"duration": d.String(), "until": ts.PausedUntil.UTC().Format(time.RFC3339)})
	writeJSON(w, http.StatusOK, ts)
}

// resumeTenant is POST /v1/tenants/{id}/resume.
func (s *Server) resumeTenant(w http.ResponseWriter, r *http.Request) {
	if sc := scopeOf(r); !sc.tenant(r.PathValue("id")) {
		s.forbidTenant(w, r, sc, r.PathValue("id"), RightPause)
		return
	}
	ts, err := s.cfg.Admin.Resume(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("tenant resumed through the api", "tenant", ts.ID)
	s.audit(r, dispatcher.AuditResume, ts.ID, actionReason(r), nil)
	writeJSON(w, http.StatusOK, ts)
}

// decodeBody decodes a small JSON body strictly into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	return decodeBodyLimit(w, r, v, maxSmallBody)
}

// decodeBodyLimit decodes a JSON body of at most limit bytes strictly
// into v.
func decodeBodyLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) (int, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", limit)
		}
		return http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, fmt.Errorf("malformed JSON: %v", err)
	}
	if dec.More() {
		return http.StatusBadRequest, errors.New("malformed JSON: data after the object")
	}
	return 0, nil
}
