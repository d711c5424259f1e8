package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// Refused requests are recorded at most this fast (with a burst), so a
// flood of bad requests cannot flood the audit stream; the records that
// were skipped are counted in the next one's "suppressed" detail.
const (
	refusedAuditRate  = rate.Limit(1) // per second
	refusedAuditBurst = 20
)

// auditTimeout bounds writing one audit record.
const auditTimeout = 5 * time.Second

// AuditResponse is the answer to GET /v1/audit. Without after, Records are
// the latest, newest first; with after, those after it, oldest first, and
// NextAfter is the after of the next page.
type AuditResponse struct {
	Records   []dispatcher.AuditRecord `json:"records"`
	NextAfter uint64                   `json:"next_after,omitempty"`
}

// audit records an action of the request's token. A failure to record is
// logged; the action has happened and its answer stands.
func (s *Server) audit(r *http.Request, action, tenant, reason string, detail map[string]string) {
	if s.cfg.Audit == nil {
		return
	}
	rec := dispatcher.AuditRecord{Actor: scopeOf(r).name, Action: action, Tenant: tenant, Reason: reason, Detail: detail}
	s.writeAudit(r.Context(), rec)
}

func (s *Server) writeAudit(ctx context.Context, rec dispatcher.AuditRecord) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := s.cfg.Audit.Record(ctx, rec); err != nil {
		s.log.Error("audit record not written", "op", rec.Action, "tenant", rec.Tenant, "error", err)
	}
}

// refusedAudit rate-limits the records of refused requests.
type refusedAudit struct {
	limiter    *rate.Limiter
	suppressed atomic.Int64
}

func newRefusedAudit() *refusedAudit {
	return &refusedAudit{limiter: rate.NewLimiter(refusedAuditRate, refusedAuditBurst)}
}

// refused logs and records a refused request: a bad token, a token beyond
// its scope, a foreign Host or a cross-site write. tokenName is "" when no
// known token was presented, tenant "" when none is concerned. Never the
// presented token itself.
func (s *Server) refused(r *http.Request, tokenName, tenant, why string) {
	s.log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "token", tokenName, "tenant", tenant, "why", why)
	if s.cfg.Audit == nil {
		return
	}
	if !s.refusals.limiter.Allow() {
		s.refusals.suppressed.Add(1)
		return
	}
	actor := tokenName
	if actor == "" {
		actor = "unauthenticated"
	}
	detail := map[string]string{"method": r.Method, "path": r.URL.Path, "remote": r.RemoteAddr, "host": r.Host}
	if n := s.refusals.suppressed.Swap(0); n > 0 {
		detail["suppressed"] = strconv.FormatInt(n, 10)
	}
	if o := r.Header.Get("Origin"); o != "" {
		detail["origin"] = o
	}
	s.writeAudit(r.Context(), dispatcher.AuditRecord{Actor: actor, Action: dispatcher.AuditRefused, Tenant: tenant, Reason: why, Detail: detail})
}

// listAudit is GET /v1/audit?tenant=&limit=&after=.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tenant := q.Get("tenant")
	if tenant != "" && !dispatcher.ValidTenantID(tenant) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("tenant %q: want 1-64 of A-Z a-z 0-9 _ -", tenant))
		return
	}
	sc := scopeOf(r)
	// A token of several (not all) tenants, no tenant named: its tenants'
	// records among the latest (or next) MaxAuditPage.
	several := tenant == "" && !sc.all && len(sc.tenants) > 1
	if !several {
		var ok bool
		if tenant, ok = s.readableTenant(w, r, tenant); !ok {
			return
		}
	}
	limit, after, ok := pageParams(w, q, dispatcher.DefaultAuditPage, dispatcher.MaxAuditPage)
	if !ok {
		return
	}
	read := limit
	if several {
		read = dispatcher.MaxAuditPage
	}
	recs, err := s.cfg.Admin.Audit(r.Context(), tenant, read, after)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := AuditResponse{Records: recs}
	if after > 0 {
		resp.NextAfter = after
		if len(recs) > 0 {
			resp.NextAfter = recs[len(recs)-1].Seq // the last one read, shown or not
		}
	}
	if several {
		mine := []dispatcher.AuditRecord{}
		for _, rec := range recs {
			if rec.Tenant != "" && sc.tenant(rec.Tenant) && len(mine) < limit {
				mine = append(mine, rec)
			}
		}
		if after > 0 && len(mine) == limit { // cut short: go on after the last shown
			resp.NextAfter = mine[len(mine)-1].Seq
		}
		resp.Records = mine
	}
	writeJSON(w, http.StatusOK, resp)
}

// actionReason is the operator's ?reason= of a resume, replay or delete,
// for the audit trail (the record bounds its length).
func actionReason(r *http.Request) string { return r.URL.Query().Get("reason") }
