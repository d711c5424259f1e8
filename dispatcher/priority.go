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

// defaultPriorityOfOp is the class of a job published on the plain subject
// of op (orgdispatch.jobs.<tenant>.<op>), where only the op is known:
// DefaultPriority without params (set_status off needs the explicit
// subject, or the Publisher, to be urgent).
func defaultPriorityOfOp(op string) Priority {
	switch {
	case op == platform.OpCampaignStop:
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
// published, e.g. orgdispatch.jobs.org_1.bulk.contacts.add. The plain
// subject (JobSubject) is the op's default class.
func (n Names) PriorityJobSubject(tenant string, p Priority, op string) string {
	return n.prefix + ".jobs." + tenant + "." + string(p) + "." + op
}

// JobSubjectOf is the subject the Publisher puts a job of class p on: the
// plain subject of op (JobSubject) when p is the op's default class there,
// the class's subject (PriorityJobSubject) otherwise.
func (n Names) JobSubjectOf(tenant string, p Priority, op string) string {
	if p == defaultPriorityOfOp(op) {
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

// PriorityFilters are the filter subjects of a tenant's class consumer: the
// explicit subjects of the class (orgdispatch.jobs.<id>.<class>.>) and the
// plain subjects of the ops whose default class it is. The normal class
// also takes orgdispatch.jobs.<id>.<token>: no op, dead-lettered as invalid.
func (n Names) PriorityFilters(tenant string, p Priority) []string {
	base := n.prefix + ".jobs." + tenant + "."
	out := []string{base + string(p) + ".>"}
	for _, op := range platform.Ops() {
		if defaultPriorityOfOp(op) == p {
			out = append(out, base+op)
		}
	}
	if p == PriorityNormal {
		out = append(out, base+"*")
	}
	return out
}

// Routable reports whether a job stored on subject is taken by one of its
// tenant's class consumers (PriorityFilters): a known op on its plain
// subject, anything on a class's subject, or a single token. A job on any
// other subject of the tenant (an op that does not exist, say) is taken by
// none; the worker dead-letters such strays as invalid.
func (n Names) Routable(subject string) bool {
	_, rest, err := n.splitJobSubject(subject)
	if err != nil {
		return false
	}
	head, tail, more := strings.Cut(rest, ".")
	switch {
	case !more:
		return true
	case Priority(head).Index() >= 0:
		return tail != ""
	}
	return platform.KnownOp(rest)
}

// ParseJobSubjectPriority splits a job subject into its tenant, class and
// operation. explicit says whether the subject names the class
// (orgdispatch.jobs.<id>.<class>.<op>); otherwise p is the op's default.
func (n Names) ParseJobSubjectPriority(subject string) (tenant string, p Priority, explicit bool, op string, err error) {
	tenant, op, err = n.splitJobSubject(subject)
	if err != nil {
		return "", "", false, "", err
	}
	if head, rest, ok := strings.Cut(op, "."); ok {
		if q := Priority(head); q.Index() >= 0 {
			if rest == "" {
				return "", "", false, "", fmt.Errorf("dispatcher: subject %q names no operation", subject)
			}
			return tenant, q, true, rest, nil
		}
	}
	return tenant, defaultPriorityOfOp(op), false, op, nil
}
