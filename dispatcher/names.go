package dispatcher

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/orgdispatch/orgdispatch/tenants"
)

// DefaultPrefix is the subject prefix when none is configured.
const DefaultPrefix = "orgdispatch"

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// ValidTenantID reports whether id can name a tenant: 1–64 of A–Z a–z 0–9 _ -.
// A tenant id is a NATS subject token, a consumer name and a KV key part.
// It is tenants.ValidID, the one definition.
func ValidTenantID(id string) bool { return tenants.ValidID(id) }

// Names derives every NATS name orgdispatch uses from one prefix, so that two
// installations can share a NATS account without seeing each other's jobs.
// The zero value is not usable; build it with NewNames.
type Names struct {
	prefix string
}

// NewNames returns the names for prefix ("" means DefaultPrefix). A prefix is
// lower case, starts with a letter, and has at most 32 of a–z 0–9 _ -.
func NewNames(prefix string) (Names, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(prefix) {
		return Names{}, fmt.Errorf("dispatcher: invalid prefix %q: want 1-32 of a-z 0-9 _ - starting with a letter", prefix)
	}
	return Names{prefix: prefix}, nil
}

// MustNames is NewNames for prefixes known to be valid; it panics otherwise.
func MustNames(prefix string) Names {
	n, err := NewNames(prefix)
	if err != nil {
		panic(err)
	}
	return n
}

// Prefix is the subject prefix, e.g. "orgdispatch".
func (n Names) Prefix() string { return n.prefix }

func (n Names) upper() string { return strings.ToUpper(strings.ReplaceAll(n.prefix, "-", "_")) }

// JobShards is how many jobs streams the tenants are spread over. Each
// tenant's jobs are in one of them (ShardOf), chosen by a hash of its id,
// so the number is part of the layout: every process of an installation
// must agree on it, and it is a constant. 16 is the measured choice (see
// docs/benchmarks.md, scale): with 1,000 tenants 16 streams took the whole
// offered load with the least server CPU of the layouts tried, a stream per
// tenant took 86 s to create 10,000 and 46 s to restart, and one stream for
// all left most of the load undelivered.
const JobShards = 16

// ShardOf is the index (0 ≤ i < JobShards) of the jobs stream holding
// tenant's jobs: FNV-1a of the id, modulo JobShards.
func ShardOf(tenant string) int {
	h := uint32(2166136261)
	for i := 0; i < len(tenant); i++ {
		h ^= uint32(tenant[i])
		h *= 16777619
	}
	return int(h % JobShards)
}

// JobsStream is the work-queue stream holding tenant's queued jobs, e.g.
// ORGDISPATCH_JOBS_07: the stream of its shard (ShardOf).
func (n Names) JobsStream(tenant string) string { return n.ShardStream(ShardOf(tenant)) }

// ShardStream is the name of jobs stream i, e.g. ORGDISPATCH_JOBS_07.
func (n Names) ShardStream(i int) string { return fmt.Sprintf("%s_JOBS_%02d", n.upper(), i) }

// IsJobsStream reports whether name is one of the jobs streams.
func (n Names) IsJobsStream(name string) bool {
	rest, ok := strings.CutPrefix(name, n.upper()+"_JOBS_")
	if !ok || len(rest) != 2 || rest[0] < '0' || rest[0] > '9' || rest[1] < '0' || rest[1] > '9' {
		return false
	}
	return int(rest[0]-'0')*10+int(rest[1]-'0') < JobShards
}

// LegacyJobsStream is the one jobs stream of versions before the sharded
// layout, e.g. ORGDISPATCH_JOBS. Provision moves what it still holds into
// the sharded streams (see Migrate).
func (n Names) LegacyJobsStream() string { return n.upper() + "_JOBS" }

// DLQStream is the dead-letter stream, e.g. ORGDISPATCH_DLQ.
func (n Names) DLQStream() string { return n.upper() + "_DLQ" }

// AuditStream is the stream of audit records, e.g. ORGDISPATCH_AUDIT.
func (n Names) AuditStream() string { return n.upper() + "_AUDIT" }

// AuditSubjects is the audit stream's subject filter, e.g. orgdispatch.audit.>.
func (n Names) AuditSubjects() string { return n.prefix + ".audit.>" }

// AuditNoTenant is the tenant token of the subject of an audit record
// about no one tenant. It cannot be a tenant id.
const AuditNoTenant = "~"

// AuditSubject is where an audit record of action on tenant is stored,
// e.g. orgdispatch.audit.org_1.pause; tenant "" is AuditNoTenant.
func (n Names) AuditSubject(tenant, action string) string {
	if tenant == "" {
		tenant = AuditNoTenant
	}
	return n.prefix + ".audit." + tenant + "." + action
}

// TenantAuditFilter matches a tenant's audit records.
func (n Names) TenantAuditFilter(tenant string) string { return n.prefix + ".audit." + tenant + ".>" }

// JobsSubjects matches every job subject, e.g. orgdispatch.jobs.>. The jobs
// streams listen on their tenants' filters (TenantJobsFilter) only, so that
// a job for a tenant that is not configured finds no stream and is refused.
func (n Names) JobsSubjects() string { return n.prefix + ".jobs.>" }

// DLQSubjects is the dead-letter stream's subject filter, e.g. orgdispatch.dlq.>.
func (n Names) DLQSubjects() string { return n.prefix + ".dlq.>" }

// JobSubject is where a tenant's job of operation op is published,
// e.g. orgdispatch.jobs.org_1.campaign.start.
func (n Names) JobSubject(tenant, op string) string {
	return n.prefix + ".jobs." + tenant + "." + op
}

// TenantJobsFilter matches all of a tenant's jobs, e.g. orgdispatch.jobs.org_1.>.
func (n Names) TenantJobsFilter(tenant string) string { return n.prefix + ".jobs." + tenant + ".>" }

// DLQSubject is where a tenant's dead letter of operation op is stored.
func (n Names) DLQSubject(tenant, op string) string { return n.prefix + ".dlq." + tenant + "." + op }

// TenantDLQFilter matches all of a tenant's dead letters.
func (n Names) TenantDLQFilter(tenant string) string { return n.prefix + ".dlq." + tenant + ".>" }

// EventSubject is where a job's outcome event is published,
// e.g. orgdispatch.events.org_1.succeeded.
func (n Names) EventSubject(tenant, outcome string) string {
	return n.prefix + ".events." + tenant + "." + outcome
}

// Consumer is the durable consumer name of a tenant, e.g. tenant_org_1.
func (n Names) Consumer(tenant string) string { return "tenant_" + tenant }

// TenantOfConsumer is the inverse of Consumer; ok is false for other names.
func (n Names) TenantOfConsumer(consumer string) (tenant string, ok bool) {
	t, ok := strings.CutPrefix(consumer, "tenant_")
	if !ok || !ValidTenantID(t) {
		return "", false
	}
	return t, true
}

// StatusBucket is the KV bucket of job states, keyed <tenant>.<job id>.
func (n Names) StatusBucket() string { return n.prefix + "_job_status" }

// ReplicasBucket is the KV bucket where worker replicas heartbeat, keyed by
// replica id: one small liveness record each (Heartbeat).
func (n Names) ReplicasBucket() string { return n.prefix + "_replicas" }

// LanesBucket is the KV bucket where worker replicas publish their lanes'
// figures, in pages of bounded size (LanePage), keyed LanePageKey.
func (n Names) LanesBucket() string { return n.prefix + "_lanes" }

// PausesBucket is the KV bucket holding why and by whom a tenant was paused,
// keyed by tenant. The pause itself is the consumer's; this is its reason.
func (n Names) PausesBucket() string { return n.prefix + "_pauses" }

// PauseAdvisorySubject matches the server's consumer pause advisories of
// every stream; IsJobsStream tells the jobs streams' ones apart.
func (n Names) PauseAdvisorySubject() string {
	return "$JS.EVENT.ADVISORY.CONSUMER.PAUSE.*.*"
}

// ParseJobSubject splits a job subject into its tenant and operation; a
// class token (orgdispatch.jobs.<id>.bulk.<op>) is not part of the
// operation (see ParseJobSubjectPriority).
func (n Names) ParseJobSubject(subject string) (tenant, op string, err error) {
	tenant, op, err = n.splitJobSubject(subject)
	if err != nil {
		return "", "", err
	}
	if head, rest, ok := strings.Cut(op, "."); ok && strings.Contains(rest, ".") && Priority(head).Index() >= 0 {
		if rest == "" {
			return "", "", fmt.Errorf("dispatcher: subject %q names no operation", subject)
		}
		op = rest
	}
	return tenant, op, nil
}

// splitJobSubject splits a job subject after its tenant token.
func (n Names) splitJobSubject(subject string) (tenant, op string, err error) {
	rest, ok := strings.CutPrefix(subject, n.prefix+".jobs.")
	if !ok {
		return "", "", fmt.Errorf("dispatcher: subject %q is not under %s.jobs", subject, n.prefix)
	}
	tenant, op, ok = strings.Cut(rest, ".")
	if !ok || op == "" {
		return "", "", fmt.Errorf("dispatcher: subject %q names no operation", subject)
	}
	if !ValidTenantID(tenant) {
		return "", "", fmt.Errorf("dispatcher: subject %q: invalid tenant id %q", subject, tenant)
	}
	return tenant, op, nil
}

// StatusKey is the status bucket key of a tenant's job.
func StatusKey(tenant, jobID string) string { return tenant + "." + jobID }

// MsgID is the Nats-Msg-Id of a tenant's job. It is scoped by tenant so that
// two orgs using the same idempotency key never deduplicate each other.
func MsgID(tenant, jobID string) string { return tenant + ":" + jobID }
