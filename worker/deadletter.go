package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// Dead-letter classes (the Orgdispatch-Error-Class header).
const (
	ClassInvalid   = "invalid"   // the envelope or its params can never run
	ClassPermanent = "permanent" // the platform refused it (400, 403, 404, 409, 422, …)
	ClassExhausted = "exhausted" // failed transiently on every attempt of its budget
	ClassExpired   = "expired"   // its deadline passed before it could run
)

// deadLetterTimeout bounds the dead-letter publish.
const deadLetterTimeout = 5 * time.Second

// maxErrorHeader caps the error text in a dead letter's header.
const maxErrorHeader = 1024

// deadLetter describes why a job is given up.
type deadLetter struct {
	class      string
	reason     string // never a secret
	httpStatus int
	attempts   int
	first      time.Time
	last       time.Time
}

// publishDeadLetter stores the job's original body on the dead-letter
// subject with headers saying why. It waits for the stream's ack: only then
// may the job be terminated. The message id makes a repeated publish of the
// same delivery (after a failed ack) a duplicate, not a second dead letter.
func (p *Pool) publishDeadLetter(ctx context.Context, r *run, dl deadLetter) error {
	h := deadLetterHeader(r.msg.Headers(), r.tenant, r.op, r.job.ID, dl)
	if dl.httpStatus != 0 {
		h.Set(dispatcher.HeaderHTTPStatus, strconv.Itoa(dl.httpStatus))
	}
	if r.corr != "" {
		h.Set(dispatcher.HeaderCorrelation, headerSafe(r.corr))
	}
	h.Set(dispatcher.HeaderAttempts, strconv.Itoa(dl.attempts))
	if !dl.first.IsZero() {
		h.Set(dispatcher.HeaderFirstAttempt, dl.first.UTC().Format(time.RFC3339Nano))
	}
	h.Set(dispatcher.HeaderLastAttempt, dl.last.UTC().Format(time.RFC3339Nano))
	h.Set(dispatcher.HeaderSubject, r.msg.Subject())
	if r.meta != nil {
		h.Set(nats.MsgIdHdr, fmt.Sprintf("dlq:%s:%s:%d", r.tenant, r.meta.Stream, r.meta.Sequence.Stream))
	}

	ctx, cancel := context.WithTimeout(ctx, deadLetterTimeout)
	defer cancel()
	m := &nats.Msg{Subject: p.cfg.Names.DLQSubject(r.tenant, r.op), Header: h, Data: r.msg.Data()}
	if _, err := p.cfg.JS.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("tenant %s: dead-letter job %q: %w", r.tenant, r.job.ID, err)
	}
	return nil
}

// deadLetterHeader is a dead letter's headers: the job's own (server and
// orgdispatch headers left out: they are set afresh) and who, what and why.
func deadLetterHeader(src nats.Header, tenant, op, jobID string, dl deadLetter) nats.Header {
	h := nats.Header{}
	for k, vs := range src {
		if strings.HasPrefix(k, "Nats-") || strings.HasPrefix(k, "Orgdispatch-") {
			continue
		}
		h[k] = vs
	}
	h.Set(dispatcher.HeaderTenant, tenant)
	h.Set(dispatcher.HeaderOp, op)
	if jobID != "" {
		h.Set(dispatcher.HeaderJobID, jobID)
	}
	h.Set(dispatcher.HeaderErrorClass, dl.class)
	h.Set(dispatcher.HeaderError, headerSafe(dl.reason))
	return h
}

// headerSafe makes s fit in one header value: no line breaks, capped.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorHeader {
		s = strings.ToValidUTF8(s[:maxErrorHeader], "") + "…"
	}
	return s
}

// event is the outcome event published on Names.EventSubject.
type event struct {
	ID         string `json:"id"`
	Tenant     string `json:"tenant"`
	Op         string `json:"op"`
	Outcome    string `json:"outcome"`
	HTTPStatus int    `json:"http_status,omitempty"`
	Error      string `json:"error,omitempty"`
	// CorrelationID is the platform's ININ-Correlation-Id of the answer.
	CorrelationID string    `json:"correlation_id,omitempty"`
	At            time.Time `json:"at"`
}

// publishEvent tells upstream systems about a job's outcome (core NATS: at
// most once, for listeners that are there).
func (p *Pool) publishEvent(ev event) {
	data, err := json.Marshal(ev)
	if err != nil {
		return
	}
	if err := p.cfg.Conn.Publish(p.cfg.Names.EventSubject(ev.Tenant, ev.Outcome), data); err != nil {
		p.log.Debug("publish outcome event", "tenant", ev.Tenant, "job_id", ev.ID, "error", err)
	}
}
