package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// DefaultURL is where the client looks for the API when no URL is given.
const DefaultURL = "http://127.0.0.1:8080"

// Client calls the HTTP API; the admin CLI (status, pause, resume, dlq) is
// built on it. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// NewClient returns a client of the API at baseURL ("" means DefaultURL),
// sending token as the bearer token when it is not empty. hc nil means an
// http.Client with a 30 s timeout.
func NewClient(baseURL, token string, hc *http.Client) (*Client, error) {
	if baseURL == "" {
		baseURL = DefaultURL
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api client: URL %q: want http(s)://host[:port]", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	// A token read from a file or a Secret may end in a newline, which is
	// not part of it (and which Go refuses in a header).
	return &Client{base: u, token: strings.TrimSpace(token), hc: hc}, nil
}

// Error is an error answer of the API.
type Error struct {
	Status int // HTTP status
	ErrorResponse
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("api: %d %s: %s", e.Status, http.StatusText(e.Status), e.ErrorResponse.Error)
	for _, ie := range e.Errors {
		msg += fmt.Sprintf("\n  job %d (%s): %s", ie.Index, ie.ID, ie.Error)
	}
	return msg
}

// Unwrap is the *dispatcher.DeadlineUnreachableError of a refusal by
// drain-time admission (a 422 with deadline_unreachable), so that
// errors.As finds it as it does for the Publisher's; nil otherwise.
func (e *Error) Unwrap() error {
	if e.Deadline == nil {
		return nil
	}
	return e.Deadline.Err()
}

// IsNotFound reports whether err is an API answer of 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// do sends a request and decodes a 2xx answer into out (nil: discard).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("api client: encode request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("api client: %w", err)
	}
	if in != nil || method != http.MethodGet {
		// The server takes writes with a JSON Content-Type only (even
		// without a body), the mark of a request no web page can forge.
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("api client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("api client: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.ErrorResponse) != nil || e.ErrorResponse.Error == "" {
			e.ErrorResponse.Error = strings.TrimSpace(string(data))
		}
		return e
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("api client: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// SubmitJobs publishes jobs (each naming its tenant) through POST /v1/jobs.
// An invalid job fails the whole call with an *Error listing every invalid
// job, and nothing is published.
func (c *Client) SubmitJobs(ctx context.Context, jobs ...dispatcher.Job) (SubmitResponse, error) {
	var out SubmitResponse
	err := c.do(ctx, http.MethodPost, "/v1/jobs", nil, jobs, &out)
	return out, err
}

// SubmitJobsWithinDeadline is SubmitJobs with drain-time admission
// (POST /v1/jobs?admission=deadline): every job needs a deadline, and the
// first that its tenant would not finish by it is refused, with it the
// rest of the request. The error of a refusal is an *Error (422) that
// unwraps to the *dispatcher.DeadlineUnreachableError with the estimate;
// its Accepted and Duplicates name the jobs published before it.
func (c *Client) SubmitJobsWithinDeadline(ctx context.Context, jobs ...dispatcher.Job) (SubmitResponse, error) {
	var out SubmitResponse
	err := c.do(ctx, http.MethodPost, "/v1/jobs", url.Values{"admission": {AdmissionDeadline}}, jobs, &out)
	return out, err
}

// Job returns the status of every tenant's job with this id.
func (c *Client) Job(ctx context.Context, id string) ([]dispatcher.JobStatus, error) {
	var out JobResponse
	err := c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, nil, &out)
	return out.Jobs, err
}

// Tenants lists every tenant's status.
func (c *Client) Tenants(ctx context.Context) ([]dispatcher.TenantStatus, error) {
	var out TenantsResponse
	err := c.do(ctx, http.MethodGet, "/v1/tenants", nil, nil, &out)
	return out.Tenants, err
}

// Tenant returns one tenant's status.
func (c *Client) Tenant(ctx context.Context, id string) (dispatcher.TenantStatus, error) {
	var out dispatcher.TenantStatus
	err := c.do(ctx, http.MethodGet, "/v1/tenants/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// Pause pauses a tenant cluster-wide for d.
func (c *Client) Pause(ctx context.Context, id string, d time.Duration, reason string) (dispatcher.TenantStatus, error) {
	var out dispatcher.TenantStatus
	err := c.do(ctx, http.MethodPost, "/v1/tenants/"+url.PathEscape(id)+"/pause", nil,
		PauseRequest{Duration: d.String(), Reason: reason}, &out)
	return out, err
}

// Resume ends a tenant's pause.
func (c *Client) Resume(ctx context.Context, id string) (dispatcher.TenantStatus, error) {
	return c.ResumeWithReason(ctx, id, "")
}

// ResumeWithReason ends a tenant's pause, saying why (for the audit trail).
func (c *Client) ResumeWithReason(ctx context.Context, id, reason string) (dispatcher.TenantStatus, error) {
	var out dispatcher.TenantStatus
	err := c.do(ctx, http.MethodPost, "/v1/tenants/"+url.PathEscape(id)+"/resume", reasonQuery(reason), nil, &out)
	return out, err
}

// reasonQuery is the ?reason= of an action, or none.
func reasonQuery(reason string) url.Values {
	if reason == "" {
		return nil
	}
	return url.Values{"reason": {reason}}
}

// DeadLetters lists one page of dead letters (tenant "": all tenants;
// limit 0: the server's default; after 0: from the start).
func (c *Client) DeadLetters(ctx context.Context, tenant string, limit int, after uint64) (DeadLettersResponse, error) {
	var out DeadLettersResponse
	err := c.do(ctx, http.MethodGet, "/v1/dlq", pageQuery(tenant, limit, after), nil, &out)
	return out, err
}

// DeadLetter returns one dead letter.
func (c *Client) DeadLetter(ctx context.Context, seq uint64) (dispatcher.DeadLetter, error) {
	var out dispatcher.DeadLetter
	err := c.do(ctx, http.MethodGet, "/v1/dlq/"+strconv.FormatUint(seq, 10), nil, nil, &out)
	return out, err
}

// Replay publishes a dead letter's job again and deletes the dead letter.
// reason (optional) is recorded in the audit trail.
func (c *Client) Replay(ctx context.Context, seq uint64, reason ...string) (dispatcher.ReplayResult, error) {
	var out dispatcher.ReplayResult
	err := c.do(ctx, http.MethodPost, "/v1/dlq/"+strconv.FormatUint(seq, 10)+"/replay", reasonQuery(strings.Join(reason, " ")), nil, &out)
	return out, err
}

// DeleteDeadLetter deletes a dead letter. reason (optional) is recorded in
// the audit trail.
func (c *Client) DeleteDeadLetter(ctx context.Context, seq uint64, reason ...string) error {
	return c.do(ctx, http.MethodDelete, "/v1/dlq/"+strconv.FormatUint(seq, 10), reasonQuery(strings.Join(reason, " ")), nil, nil)
}

// Audit reads audit records (tenant "": every tenant the token may read;
// limit 0: the server's default). With after 0 the latest come, newest
// first; with after > 0 those after it, oldest first.
func (c *Client) Audit(ctx context.Context, tenant string, limit int, after uint64) (AuditResponse, error) {
	var out AuditResponse
	err := c.do(ctx, http.MethodGet, "/v1/audit", pageQuery(tenant, limit, after), nil, &out)
	return out, err
}

// pageQuery is a listing's query: tenant ("" for all), limit (0: the
// server's default) and after (0: none).
func pageQuery(tenant string, limit int, after uint64) url.Values {
	q := url.Values{}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	return q
}
