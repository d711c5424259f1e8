package dispatcher

import (
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/tenants"
)

// Tenant consumers' metadata keys read by time-to-drain and the scaling
// signal: the tenant's configured rate_per_minute (the drain rate when no
// lane reports one) and its quota_scope (whether the lanes' rates add up
// to the quota or each is all of it).
const (
	MetaRatePerMinute = "orgdispatch_rate_per_minute"
	MetaQuotaScope    = "orgdispatch_quota_scope"
)

// consumerMetadata is the metadata of tenant t's consumer.
func consumerMetadata(t tenants.Tenant) map[string]string {
	m := map[string]string{MetaMaxBacklog: strconv.Itoa(t.Backlog())}
	if t.RatePerMinute > 0 {
		m[MetaRatePerMinute] = strconv.Itoa(t.RatePerMinute)
	}
	if t.QuotaScope != "" {
		m[MetaQuotaScope] = t.QuotaScope
	}
	return m
}

func drainMetadataUpToDate(have, want map[string]string) bool {
	return have[MetaRatePerMinute] == want[MetaRatePerMinute] && have[MetaQuotaScope] == want[MetaQuotaScope]
}

// Where a tenant's drain rate (TenantDrain.DrainRatePerSec) comes from.
const (
	// DrainRateLanes: the sum of the rates of the lanes that can run (not
	// parked, not stopping) on the live replicas.
	DrainRateLanes = "lanes"
	// DrainRateConfigured: no lane reports; the tenant's configured
	// rate_per_minute (for rate: auto, its first guess).
	DrainRateConfigured = "configured"
	// DrainRateNone: lanes report but none can run (all parked), or the
	// consumer records no rate: the estimate is unbounded.
	DrainRateNone = "none"
)

// SaturatedRate is the scaling signal's threshold: a tenant whose lanes
// have their slots taken complete less than this part of its quota to be
// saturated (TenantDrain.Saturated).
const SaturatedRate = 0.8

// ClassStatus is one priority class of a tenant: what it holds and when a
// job of it published now would be done.
type ClassStatus struct {
	Priority Priority `json:"priority"`
	// Backlog is how many jobs of the class the jobs stream holds: waiting,
	// waiting out a delay, or delivered and not yet finished (the count
	// max_backlog limits), from the stream's per-subject counts.
	Backlog uint64 `json:"backlog"`
	// DrainSeconds is how long until a job of the class published now
	// would be done (JobDrainSeconds): the rest of a pause, then the jobs
	// ahead of it at the class's weighted share of the tenant's rate. Nil
	// (null) when the tenant has no rate to drain at.
	DrainSeconds *float64 `json:"drain_seconds"`
}

// TenantDrain is a tenant's backlog by class, its time to drain, and what
// more worker replicas would do for it. TenantStatus embeds it.
type TenantDrain struct {
	// Classes are the tenant's classes, in Priorities order.
	Classes []ClassStatus `json:"classes"`
	// DrainRatePerSec is the rate the estimates assume: the sum of the
	// rates the lanes on the live replicas are allowed (DrainRateLanes),
	// else the configured one; DrainRateBasis says which.
	DrainRatePerSec float64 `json:"drain_rate_per_sec"`
	DrainRateBasis  string  `json:"drain_rate_basis"`
	// DrainSeconds is how long until every job held now is done
	// (BacklogDrainSeconds); nil (null) when unbounded.
	DrainSeconds *float64 `json:"drain_seconds"`
	// Saturated is set when the tenant's lanes are bound by their
	// concurrency, not by its rate: their slots taken (all but at most one
	// a lane, between two jobs), at most half of those jobs waiting on the
	// rate limiter, completing less than SaturatedRate of its quota, with
	// jobs waiting, not paused. More replicas would work it off faster.
	Saturated bool `json:"saturated"`
	// ReplicasWanted is how many replicas the tenant needs (see
	// ReplicasWanted in the package's scaling notes); 0 without lanes
	// running.
	ReplicasWanted int `json:"replicas_wanted"`
}

// Class returns the status of class p (the zero value for a name that is
// no class).
func (d TenantDrain) Class(p Priority) ClassStatus {
	for _, c := range d.Classes {
		if c.Priority == p {
			return c
		}
	}
	return ClassStatus{Priority: p}
}

// secondsOrNil is s as a JSON-able figure: nil for +Inf.
func secondsOrNil(s float64) *float64 {
	if math.IsInf(s, 0) || math.IsNaN(s) {
		return nil
	}
	return &s
}

// canRun reports whether a lane pulls jobs (it may be paused: the pause is
// counted apart).
func canRun(l LaneReport) bool { return !l.Parked && l.State != LaneStopped }

// drainRate is the rate tenant's queue drains at, and where it comes from.
func drainRate(meta map[string]string, lanes []LaneReport) (float64, string) {
	if len(lanes) > 0 {
		rate, running := 0.0, 0
		for _, l := range lanes {
			if canRun(l) {
				rate += l.RatePerSec
				running++
			}
		}
		if running == 0 {
			return 0, DrainRateNone
		}
		return rate, DrainRateLanes
	}
	if n, err := strconv.Atoi(meta[MetaRatePerMinute]); err == nil && n > 0 {
		return float64(n) / 60, DrainRateConfigured
	}
	return 0, DrainRateNone
}

// buildDrain computes a tenant's TenantDrain from its consumer's metadata,
// its lanes on the live replicas, its jobs by class, how many wait
// undelivered, and the rest of its pause (0: not paused).
func buildDrain(meta map[string]string, lanes []LaneReport, classes ClassCounts, waiting uint64, pause time.Duration) TenantDrain {
	rate, basis := drainRate(meta, lanes)
	d := TenantDrain{
		DrainRatePerSec: rate,
		DrainRateBasis:  basis,
		DrainSeconds:    secondsOrNil(BacklogDrainSeconds(classes, rate, pause)),
	}
	for _, p := range Priorities() {
		d.Classes = append(d.Classes, ClassStatus{
			Priority:     p,
			Backlog:      classes.Of(p),
			DrainSeconds: secondsOrNil(JobDrainSeconds(classes, p, rate, pause)),
		})
	}
	if pause <= 0 {
		d.Saturated, d.ReplicasWanted = capacity(meta[MetaQuotaScope], lanes, waiting)
	}
	return d
}

// capacity says whether a tenant's lanes are bound by their concurrency
// (saturated) and how many replicas it needs.
//
// With n lanes running (one per replica), c = their concurrency ÷ n (per
// replica), F jobs in flight, D completions a second and Q the tenant's
// quota (quota_scope org: the lanes' rates summed, each being a share;
// token: their mean, each replica's token having all of it), each slot
// completes D ÷ F jobs a second (Little's law), so k replicas complete
// k × c × D ÷ F. A tenant is saturated when its slots are taken
// (F ≥ n × c − n: one a lane may be between two jobs), at most half of
// them wait on the rate limiter (W ≤ F ÷ 2: jobs waiting there are a
// tenant held back by its rate, whose D also reads low just after it
// started or a pause ended), and D < SaturatedRate × Q. Its slots all
// taken (F = n × c, read as such: one reading's F flickers as jobs end and
// start), each replica completes D ÷ n a second, and it reaches its quota
// with
//
//	k = ⌈Q × F ÷ (c × D)⌉ = ⌈n × Q ÷ D⌉
//
// replicas. Any other tenant needs the replicas that hold what it has in
// flight, ⌈F ÷ c⌉ ≤ n. Both stay put once reached: with k replicas a
// saturated tenant completes k × D ÷ n, so the next reading asks for k
// again. Lanes that completed nothing within their window (10 s) are
// not taken for saturated: that is a lane that has just started or come
// out of a pause as much as one whose answers take longer than the window.
func capacity(scope string, lanes []LaneReport, waiting uint64) (saturated bool, wanted int) {
	var n, conc, inFlight, rateWaiting int
	var done, rate float64
	for _, l := range lanes {
		if !canRun(l) {
			continue
		}
		n++
		conc += l.Concurrency
		inFlight += l.InFlight
		rateWaiting += l.RateWaiting
		done += l.DonePerSec
		rate += l.RatePerSec
	}
	if n == 0 || conc == 0 {
		return false, 0
	}
	quota := rate
	if scope != tenants.ScopeOrg {
		quota = rate / float64(n)
	}
	perReplica := float64(conc) / float64(n)
	saturated = waiting > 0 && done > 0 && inFlight >= max(1, conc-n) &&
		2*rateWaiting <= inFlight && done < SaturatedRate*quota
	if !saturated {
		return false, int(math.Ceil(float64(inFlight) / perReplica))
	}
	return true, int(math.Ceil(float64(n) * quota / done))
}

// tenantDrainOf is the TenantDrain of a tenant whose consumer is info.
func tenantDrainOf(info *jetstream.ConsumerInfo, lanes []LaneReport, classes ClassCounts, now time.Time) TenantDrain {
	var pause time.Duration
	if info.Paused && info.Config.PauseUntil != nil {
		pause = info.Config.PauseUntil.Sub(now)
	}
	return buildDrain(info.Config.Metadata, lanes, classes, info.NumPending, max(pause, 0))
}

// ScalingSignal is what the tenants' statuses say about how many worker
// replicas to run.
type ScalingSignal struct {
	// DispatchableBacklog is the backlog of tenants that are not paused.
	DispatchableBacklog uint64 `json:"dispatchable_backlog"`
	// ScalableBacklog is the backlog more replicas would work off faster:
	// that of saturated tenants (bound by their lanes' concurrency), and,
	// while no replica runs at all, every tenant's that is not paused.
	// Tenants held back by their rate or quota do not count: with
	// quota_scope org more replicas split the quota, and the scaling
	// signal aims at each tenant's quota, not beyond it.
	ScalableBacklog uint64 `json:"scalable_backlog"`
	// ReplicasWanted is the most replicas any tenant needs
	// (TenantDrain.ReplicasWanted; every replica runs every tenant), at
	// least 1 while any backlog is dispatchable.
	ReplicasWanted int `json:"replicas_wanted"`
}

// Scaling sums up the scaling signal of ts.
func Scaling(ts []TenantStatus) ScalingSignal {
	var s ScalingSignal
	anyLanes := false
	for _, t := range ts {
		if t.Replicas > 0 {
			anyLanes = true
		}
	}
	for _, t := range ts {
		if t.Paused {
			continue
		}
		s.DispatchableBacklog += t.Backlog
		s.ReplicasWanted = max(s.ReplicasWanted, t.ReplicasWanted)
		if t.Saturated || (!anyLanes && t.Backlog > 0) {
			s.ScalableBacklog += t.Backlog
		}
	}
	if s.DispatchableBacklog > 0 {
		s.ReplicasWanted = max(s.ReplicasWanted, 1)
	}
	return s
}

// ClassBacklogs sorts a jobs stream's per-subject counts
// (StreamInfo.State.Subjects) by tenant and class
// (ParseJobSubjectPriority). Subjects that are no job subject are left out.
func (n Names) ClassBacklogs(subjects map[string]uint64) map[string]ClassCounts {
	out := map[string]ClassCounts{}
	for subj, msgs := range subjects {
		tenant, p, _, _, err := n.ParseJobSubjectPriority(subj)
		if err != nil {
			continue
		}
		c := out[tenant]
		c[p.Index()] += msgs
		out[tenant] = c
	}
	return out
}
