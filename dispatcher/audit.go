package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// Audit actions: what an audit record says happened.
const (
	AuditPause          = "pause"           // a tenant paused by an operator
	AuditResume         = "resume"          // a tenant's pause ended by an operator
	AuditDLQReplay      = "dlq_replay"      // a dead letter's job published again
	AuditDLQDelete      = "dlq_delete"      // a dead letter deleted
	AuditTenantAdded    = "tenant_added"    // a tenants-file reload added a tenant
	AuditTenantChanged  = "tenant_changed"  // ... changed one (Detail["fields"])
	AuditTenantRemoved  = "tenant_removed"  // ... removed one
	AuditRefused        = "refused"         // an API request refused: bad token, scope, host, cross-site
	AuditScheduleAdd    = "schedule_add"    // a schedule added (Detail: name, run_at or cron, time_zone, job_id, op)
	AuditScheduleCancel = "schedule_cancel" // a schedule cancelled
)

// Bounds of one audit record's free text.
const (
	MaxAuditReason  = 512
	MaxAuditDetail  = 16
	maxAuditDetailV = 256
)

// DefaultAuditPage is how many audit records Audit returns when no limit is
// given; MaxAuditPage caps a page.
const (
	DefaultAuditPage = 50
	MaxAuditPage     = 500
)

var auditActionRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// AuditRecord is one entry of the audit trail: who did what to which
// tenant, when and why. It never holds a secret or a token: Actor is a
// token's name or a replica id.
type AuditRecord struct {
	// Seq is the record's audit stream sequence (set when read).
	Seq uint64 `json:"seq,omitempty"`
	// Time is when it happened (set by Record when zero).
	Time time.Time `json:"time"`
	// Actor is who: an API token's name ("anonymous" on an API without
	// tokens), or the replica id for a tenants-file reload.
	Actor string `json:"actor"`
	// Action is what, one of the Audit* constants.
	Action string `json:"action"`
	// Tenant is the tenant concerned, "" for none.
	Tenant string `json:"tenant,omitempty"`
	// Reason is why: a pause reason, why a request was refused.
	Reason string `json:"reason,omitempty"`
	// Detail holds the rest (until, seq, job_id, fields, method, path,
	// remote, suppressed ...).
	Detail map[string]string `json:"detail,omitempty"`
}

// AuditStreamConfig is the configuration Provision gives the audit stream:
// limits retention, bounded by age, count and size, the oldest dropped
// first.
func AuditStreamConfig(names Names, cfg StreamConfig) jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	return jetstream.StreamConfig{
		Name:        names.AuditStream(),
		Description: "orgdispatch audit trail: who paused, resumed, replayed, deleted, reloaded or was refused",
		Subjects:    []string{names.AuditSubjects()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.AuditMaxAge,
		MaxMsgs:     cfg.AuditMaxMsgs,
		MaxBytes:    cfg.AuditMaxBytes,
		MaxMsgSize:  16 << 10,
		Replicas:    cfg.Replicas,
	}
}

// Auditor writes audit records to the audit stream. It is safe for
// concurrent use.
type Auditor struct {
	js    jetstream.JetStream
	names Names
	now   func() time.Time
}

// NewAuditor returns an Auditor writing to names' audit stream.
func NewAuditor(js jetstream.JetStream, names Names) *Auditor {
	return &Auditor{js: js, names: names, now: time.Now}
}

// Record stores rec (Time defaults to now). Free text is cut to its bounds
// and made valid UTF-8.
func (a *Auditor) Record(ctx context.Context, rec AuditRecord) error {
	if !auditActionRE.MatchString(rec.Action) {
		return fmt.Errorf("dispatcher: audit: invalid action %q", rec.Action)
	}
	if rec.Tenant != "" && !ValidTenantID(rec.Tenant) {
		// A refused request may name anything: keep it, not as the subject.
		rec.Detail = withDetail(rec.Detail, "tenant_requested", rec.Tenant)
		rec.Tenant = ""
	}
	if rec.Time.IsZero() {
		rec.Time = a.now()
	}
	rec.Time = rec.Time.UTC()
	rec.Seq = 0
	rec.Actor = cut(rec.Actor, 128)
	rec.Reason = cut(rec.Reason, MaxAuditReason)
	if len(rec.Detail) > MaxAuditDetail {
		keys := make([]string, 0, len(rec.Detail))
		for k := range rec.Detail {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys[MaxAuditDetail:] {
			delete(rec.Detail, k)
		}
	}
	for k, v := range rec.Detail {
		rec.Detail[k] = cut(v, maxAuditDetailV)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("dispatcher: audit: %w", err)
	}
	if _, err := a.js.Publish(ctx, a.names.AuditSubject(rec.Tenant, rec.Action), data); err != nil {
		return fmt.Errorf("dispatcher: audit %s: %w", rec.Action, err)
	}
	return nil
}

func withDetail(d map[string]string, k, v string) map[string]string {
	if d == nil {
		d = map[string]string{}
	}
	d[k] = v
	return d
}

// cut makes s valid UTF-8 of at most n bytes.
func cut(s string, n int) string {
	s = string([]rune(s)) // invalid bytes become U+FFFD
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

func (a *Admin) auditStream(ctx context.Context) (jetstream.Stream, error) {
	s, err := a.js.Stream(ctx, a.names.AuditStream())
	if err != nil {
		return nil, fmt.Errorf("admin: stream %s: %w", a.names.AuditStream(), err)
	}
	return s, nil
}

// Audit reads audit records; tenant "" means every tenant's (and those of
// no tenant). With after > 0 it returns up to limit records after sequence
// after, oldest first (pass the last Seq as after for the next page). With
// after 0 it returns the latest limit records, newest first. limit 0 is
// DefaultAuditPage; it is capped at MaxAuditPage.
func (a *Admin) Audit(ctx context.Context, tenant string, limit int, after uint64) ([]AuditRecord, error) {
	filter := a.names.AuditSubjects()
	if tenant != "" {
		if !ValidTenantID(tenant) {
			return nil, fmt.Errorf("admin: audit: tenant %q: %w", tenant, ErrTenantNotFound)
		}
		filter = a.names.TenantAuditFilter(tenant)
	}
	switch {
	case limit <= 0:
		limit = DefaultAuditPage
	case limit > MaxAuditPage:
		limit = MaxAuditPage
	}
	s, err := a.auditStream(ctx)
	if err != nil {
		return nil, err
	}
	if after > 0 {
		return a.readAudit(ctx, s, filter, after+1, limit, 0)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: audit: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return []AuditRecord{}, nil
	}
	// The latest records: read forward from ever earlier starts until
	// enough match or the start is the stream's first record.
	for span := uint64(limit); ; span *= 4 {
		start := first
		if last >= span && last-span+1 > first {
			start = last - span + 1
		}
		recs, err := a.readAudit(ctx, s, filter, start, 0, last)
		if err != nil {
			return nil, err
		}
		if len(recs) >= limit || start == first {
			if len(recs) > limit {
				recs = recs[len(recs)-limit:]
			}
			slices.Reverse(recs)
			return recs, nil
		}
	}
}

// readAudit reads matching records from seq on: at most limit (0: any
// number), up to sequence upTo (0: the end).
func (a *Admin) readAudit(ctx context.Context, s jetstream.Stream, filter string, seq uint64, limit int, upTo uint64) ([]AuditRecord, error) {
	out := []AuditRecord{}
	for (limit == 0 || len(out) < limit) && (upTo == 0 || seq <= upTo) {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("admin: audit: read from %d: %w", seq, err)
		}
		if upTo > 0 && m.Sequence > upTo {
			break
		}
		var rec AuditRecord
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			rec = AuditRecord{Action: "unreadable", Reason: err.Error(), Time: m.Time}
		}
		rec.Seq = m.Sequence
		out = append(out, rec)
		seq = m.Sequence + 1
	}
	return out, nil
}
