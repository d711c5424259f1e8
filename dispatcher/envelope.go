package dispatcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/orgdispatch/orgdispatch/platform"
)

// MaxJobBytes is the largest encoded job accepted. It matches the platform's
// request body limit (request.bytes.max = 512,000 bytes): a larger job could
// never be sent.
const MaxJobBytes = 512_000

var jobIDRE = regexp.MustCompile(`^[A-Za-z0-9_=-][A-Za-z0-9_.=-]{0,126}[A-Za-z0-9_=-]$|^[A-Za-z0-9_=-]$`)

// Job is the envelope upstream systems publish: one platform operation for one
// tenant.
type Job struct {
	// ID is the caller's idempotency key: a job published twice with the same
	// id within the stream's duplicate window runs once. 1–128 of A–Z a–z 0–9
	// _ = - . (not starting or ending with a dot, no two dots in a row: the id
	// is part of the status bucket's key).
	ID string `json:"id"`
	// Tenant, when set, must equal the tenant of the subject the job is
	// published on.
	Tenant string `json:"tenant,omitempty"`
	// Op is one of platform.Ops().
	Op string `json:"op"`
	// Params are the operation's parameters (see platform.ValidateParams).
	Params json.RawMessage `json:"params,omitempty"`
	// Deadline, when set, is the time after which the job is not executed; it
	// is dead-lettered as expired instead.
	Deadline *time.Time `json:"deadline,omitempty"`
	// Priority, when set, is the job's class: urgent, normal or bulk (see
	// Priority). Empty means DefaultPriority of its op. The Publisher puts
	// the job on its class's subject; on the wire the subject decides.
	Priority string `json:"priority,omitempty"`
}

// InvalidJobError says why a job can never run. Jobs that fail validation are
// rejected at publish time, or dead-lettered as invalid by the worker.
type InvalidJobError struct {
	Reason string
}

func (e *InvalidJobError) Error() string { return "invalid job: " + e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidJobError{Reason: fmt.Sprintf(format, args...)}
}

// DecodeJob parses an encoded job strictly: unknown fields, trailing data and
// oversize input are errors. It does not validate; call Validate.
func DecodeJob(data []byte) (Job, error) {
	if len(data) > MaxJobBytes {
		return Job{}, invalid("job is %d bytes, larger than the %d byte limit", len(data), MaxJobBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j Job
	if err := dec.Decode(&j); err != nil {
		return Job{}, invalid("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Job{}, invalid("malformed JSON: data after the job object")
	}
	return j, nil
}

// Validate checks the job for the tenant whose subject it travels on
// (subjectTenant may be "" when it is not known yet, e.g. before publishing
// with Job.Tenant set).
func (j Job) Validate(subjectTenant string) error {
	if j.ID == "" {
		return invalid("id is required")
	}
	if !jobIDRE.MatchString(j.ID) || strings.Contains(j.ID, "..") {
		return invalid("id %q: want 1-128 of A-Z a-z 0-9 _ = - . not starting or ending with a dot, no two dots in a row", j.ID)
	}
	tenant := j.Tenant
	if subjectTenant != "" {
		if j.Tenant != "" && j.Tenant != subjectTenant {
			return invalid("job names tenant %q but was published for tenant %q", j.Tenant, subjectTenant)
		}
		tenant = subjectTenant
	}
	if tenant == "" {
		return invalid("tenant is required")
	}
	if !ValidTenantID(tenant) {
		return invalid("tenant %q: want 1-64 of A-Z a-z 0-9 _ -", tenant)
	}
	if j.Op == "" {
		return invalid("op is required")
	}
	if j.Priority != "" {
		if _, err := ParsePriority(j.Priority); err != nil {
			return err
		}
	}
	if !platform.KnownOp(j.Op) {
		return invalid("unknown op %q", j.Op)
	}
	if err := platform.ValidateParams(j.Op, j.Params); err != nil {
		var ire *platform.InvalidRequestError
		if errors.As(err, &ire) {
			return invalid("%s params: %s", j.Op, ire.Reason)
		}
		return invalid("%s params: %v", j.Op, err)
	}
	return nil
}

// Message headers orgdispatch sets on dead letters (and reads back for
// replay), and on jobs.
const (
	HeaderTenant       = "Orgdispatch-Tenant"
	HeaderOp           = "Orgdispatch-Op"
	HeaderJobID        = "Orgdispatch-Job-Id"
	HeaderErrorClass   = "Orgdispatch-Error-Class" // invalid | permanent | exhausted | expired | credentials
	HeaderError        = "Orgdispatch-Error"       // the message, never a secret
	HeaderHTTPStatus   = "Orgdispatch-Http-Status"
	HeaderCorrelation  = "Orgdispatch-Correlation-Id" // the platform's ININ-Correlation-Id of the last answer
	HeaderAttempts     = "Orgdispatch-Attempts"
	HeaderFirstAttempt = "Orgdispatch-First-Attempt" // RFC 3339
	HeaderLastAttempt  = "Orgdispatch-Last-Attempt"  // RFC 3339
	HeaderSubject      = "Orgdispatch-Subject"       // the original subject, for replay
	// HeaderUpgraded is on a job the upgrade moved from the single-stream
	// layout: its sequence there. The worker reads its record for the
	// deliveries made before.
	HeaderUpgraded = "Orgdispatch-Upgraded-From"
)
