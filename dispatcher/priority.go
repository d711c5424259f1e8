package dispatcher

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/orgdispatch/orgdispatch/platform"
)

// Priority is a job's class within its tenant. Every class of a tenant
// shares its one rate limit, quota and pause; when jobs of several classes
// wait for the tenant's next request, the higher class goes first, by
// weight (PriorityWeight), so that a lower class is slowed but never
// starved.
//
// Each class has its own durable consumer (Names.PriorityConsumer): a job
// published behind 10,000 bulk jobs is the next of its own class, not the
// 10,001st of the tenant.
type Priority string

// The priority classes, highest first.
const (
	PriorityUrgent Priority = "urgent"
	PriorityNormal Priority = "normal"
	PriorityBulk   Priority = "bulk"
)

// Priorities lists the classes, highest first.
func Priorities() []Priority { return []Priority{PriorityUrgent, PriorityNormal, PriorityBulk} }

// PriorityWeight is a class's share of its tenant's requests while jobs of
// several classes wait: urgent 7, normal 2, bulk 1 — so with all three
// waiting, bulk still gets one request in ten, normal two, urgent seven; a
// class alone gets all of them.
func PriorityWeight(p Priority) int {
	switch p {
	case PriorityUrgent:
		return 7
	case PriorityNormal:
		return 2
	case PriorityBulk:
		return 1
	}
	return 0
}

// Index is the class's position in Priorities (0 highest), or -1.
func (p Priority) Index() int {
	for i, q := range Priorities() {
		if q == p {
			return i
		}
	}
	return -1
}

// ParsePriority reads a class name; "" is not one.
func ParsePriority(s string) (Priority, error) {
	p := Priority(s)
	if p.Index() < 0 {
		return "", invalid("priority %q: want urgent, normal or bulk", s)
	}
	return p, nil
}

// DefaultPriority is a job's class when none is asked for: urgent for jobs
// that stop a campaign (campaign.stop, campaign.set_status off), bulk for
// contacts.add and contacts.remove, normal for the rest.
func DefaultPriority(op string, params json.RawMessage) Priority {
	switch {
	case platform.StopsCampaign(op, params):
		return PriorityUrgent
	case platform.Bulk(op):
		return PriorityBulk
	}
	return PriorityNormal
}

// EffectivePriority is the class job runs in: its Priority when set, else
// DefaultPriority. It expects a valid job.
func (j Job) EffectivePriority() Priority {
	if j.Priority != "" {
		return Priority(j.Priority)
	}
	return DefaultPriority(j.Op, j.Params)
}

// PriorityJobSubject is where a tenant's job of class p and operation op is
// published, e.g. orgdispatch.jobs.org_1.bulk.contacts.add. A job on the
// plain subject (JobSubject) is normal, whatever its op: the consumer that
// takes a job is chosen by its subject alone, and each filter a consumer
// has costs nats-server a check against every other consumer's filters
// whenever one is created (per-op filters made provisioning 10,000 tenants
// take 38.7 s instead of 18.2 s; see docs/benchmarks.md). The Publisher applies each
// op's default class (DefaultPriority) by choosing the subject.
func (n Names) PriorityJobSubject(tenant string, p Priority, op string) string {
	return n.prefix + ".jobs." + tenant + "." + string(p) + "." + op
}

// JobSubjectOf is the subject the Publisher puts a job of class p on: the
// plain subject of op (JobSubject) for normal, the class's subject
// (PriorityJobSubject) otherwise.
func (n Names) JobSubjectOf(tenant string, p Priority, op string) string {
	if p == PriorityNormal {
		return n.JobSubject(tenant, op)
	}
	return n.PriorityJobSubject(tenant, p, op)
}

// PriorityConsumer is the durable consumer of a tenant's class:
// tenant_<id> for normal (the consumer of every job before classes
// existed), urgent_<id> and bulk_<id> for the others.
func (n Names) PriorityConsumer(tenant string, p Priority) string {
	if p == PriorityNormal {
		return n.Consumer(tenant)
	}
	return string(p) + "_" + tenant
}

// TenantConsumers are the durable consumers of a tenant, one per class, in
// Priorities order.
func (n Names) TenantConsumers(tenant string) []string {
	out := make([]string, 0, 3)
	for _, p := range Priorities() {
		out = append(out, n.PriorityConsumer(tenant, p))
	}
	return out
}

// TenantOfClassConsumer is the inverse of PriorityConsumer; ok is false for
// other names.
func (n Names) TenantOfClassConsumer(consumer string) (tenant string, p Priority, ok bool) {
	if t, ok := n.TenantOfConsumer(consumer); ok {
		return t, PriorityNormal, true
	}
	for _, q := range []Priority{PriorityUrgent, PriorityBulk} {
		if t, ok := strings.CutPrefix(consumer, string(q)+"_"); ok && ValidTenantID(t) {
			return t, q, true
		}
	}
	return "", "", false
}

// PriorityFilters are the filter subjects of a tenant's class consumer:
// the class's subjects (orgdispatch.jobs.<id>.<class>.<noun>.<verb>), and
// for normal also every plain subject (orgdispatch.jobs.<id>.<noun>.<verb>;
// every op is two tokens). Token counts keep them apart: a work-queue
// stream refuses consumers whose filters overlap.
func (n Names) PriorityFilters(tenant string, p Priority) []string {
	base := n.prefix + ".jobs." + tenant + "."
	if p == PriorityNormal {
		return []string{base + "*.*", base + string(p) + ".*.*"}
	}
	return []string{base + string(p) + ".*.*"}
}

// Routable reports whether a job stored on subject is taken by one of its
// tenant's class consumers (PriorityFilters): a plain subject of two
// tokens after the tenant (an op that does not exist is then dead-lettered
// as invalid by the lane), or a class's subject. A job on any other subject
// of the tenant is taken by none; the worker dead-letters such strays as
// invalid.
func (n Names) Routable(subject string) bool {
	_, rest, err := n.splitJobSubject(subject)
	if err != nil {
		return false
	}
	switch strings.Count(rest, ".") {
	case 1:
		return !strings.HasPrefix(rest, ".") && !strings.HasSuffix(rest, ".")
	case 2:
		head, _, _ := strings.Cut(rest, ".")
		return Priority(head).Index() >= 0
	}
	return false
}

// ParseJobSubjectPriority splits a job subject into its tenant, class and
// operation. explicit says whether the subject names the class
// (orgdispatch.jobs.<id>.<class>.<op>); otherwise p is normal.
func (n Names) ParseJobSubjectPriority(subject string) (tenant string, p Priority, explicit bool, op string, err error) {
	tenant, op, err = n.splitJobSubject(subject)
	if err != nil {
		return "", "", false, "", err
	}
	if head, rest, ok := strings.Cut(op, "."); ok && strings.Contains(rest, ".") {
		if q := Priority(head); q.Index() >= 0 {
			if rest == "" {
				return "", "", false, "", fmt.Errorf("dispatcher: subject %q names no operation", subject)
			}
			return tenant, q, true, rest, nil
		}
	}
	return tenant, PriorityNormal, false, op, nil
}
