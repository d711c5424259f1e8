package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Schedules: delayed (run_at) and recurring (cron) jobs, on nats-server's
// own message scheduler (Nats-Schedule headers, nats-server ≥ 2.14).
//
// A schedule is one message in the schedules stream (SchedulesStream) on
// orgdispatch.schedules.<tenant>.<name>: its body is the job envelope, its
// headers the pattern (Nats-Schedule: "@at <RFC 3339>" or a cron
// expression, with Nats-Schedule-Time-Zone) and the target,
// orgdispatch.fired.<NN>.<tenant>.<class>.<op> (NN the tenant's shard).
// When it is due, nats-server stores a copy of the body on the target, in
// the same stream — one schedule per subject; storing the copy is what
// moves the schedule to its next fire time (or removes a one-shot), so a
// server restart neither loses nor repeats a fire. Every jobs stream sources the schedules
// stream's fired subjects of its shard, turned into job subjects
// (orgdispatch.fired.07.org_1.normal.campaign.start becomes
// orgdispatch.jobs.org_1.normal.campaign.start), so a fired job is queued
// for its tenant's class consumer like any other. The fired copies in the
// schedules stream expire after a TTL (DefaultFiredTTL).
//
// The jobs streams cannot hold the schedules themselves: nats-server
// refuses message schedules on a stream that discards new messages, which
// the jobs streams must do.

// DefaultFiredTTL is how long a fired copy stays in the schedules stream
// (Nats-Schedule-TTL) for its jobs stream to take it: a jobs stream that
// refuses it (full, or unavailable) for longer loses it.
const DefaultFiredTTL = 24 * time.Hour

// OccurrenceSuffixLen is what a cron schedule's occurrence adds to its
// job's id: "." and the fire time, e.g. ".20261207T150000Z" (see
// ScheduledJob). A cron schedule's job id is at most 128 - 17 characters.
const OccurrenceSuffixLen = 17

// Headers of a schedule message that nats-server copies to every fired
// message: the cron expression and zone, from which the worker names the
// occurrence (ScheduledJob). Nats-Schedule itself is not copied.
const (
	HeaderScheduleCron     = "Orgdispatch-Schedule-Cron"
	HeaderScheduleTimeZone = "Orgdispatch-Schedule-Time-Zone"
)

// nats-server's message scheduling headers.
const (
	hdrSchedule         = "Nats-Schedule"
	hdrScheduleTimeZone = "Nats-Schedule-Time-Zone"
	hdrScheduleTarget   = "Nats-Schedule-Target"
	hdrScheduleTTL      = "Nats-Schedule-TTL"
	hdrScheduler        = "Nats-Scheduler"
	hdrScheduleNext     = "Nats-Schedule-Next"
	scheduleNextPurge   = "purge"
)

// SchedulesStream is the stream of schedules and their fired copies, e.g.
// ORGDISPATCH_SCHEDULES.
func (n Names) SchedulesStream() string { return n.upper() + "_SCHEDULES" }

// SchedulesSubjects are the schedules stream's subjects: the schedules
// (orgdispatch.schedules.>) and their fired copies (orgdispatch.fired.>).
func (n Names) SchedulesSubjects() []string {
	return []string{n.prefix + ".schedules.>", n.prefix + ".fired.>"}
}

// ScheduleSubject is the subject of tenant's schedule name, e.g.
// orgdispatch.schedules.org_1.weekday-start.
func (n Names) ScheduleSubject(tenant, name string) string {
	return n.prefix + ".schedules." + tenant + "." + name
}

// TenantSchedulesFilter matches tenant's schedules.
func (n Names) TenantSchedulesFilter(tenant string) string {
	return n.prefix + ".schedules." + tenant + ".*"
}

// FiredSubject is where tenant's schedule of class p and operation op
// fires, e.g. orgdispatch.fired.07.org_1.normal.campaign.start: 07 is the
// tenant's shard, whose jobs stream takes it as
// orgdispatch.jobs.org_1.normal.campaign.start (PriorityJobSubject).
func (n Names) FiredSubject(tenant string, p Priority, op string) string {
	return fmt.Sprintf("%s.fired.%02d.%s.%s.%s", n.prefix, ShardOf(tenant), tenant, p, op)
}

// FiredShardFilter matches the fired copies for jobs stream shard.
func (n Names) FiredShardFilter(shard int) string {
	return fmt.Sprintf("%s.fired.%02d.>", n.prefix, shard)
}

// jobsStreamSources is what jobs stream shard sources: its shard's fired
// schedules, as job subjects. A sourced message is stored on its
// transformed subject whether or not the stream listens on it.
func (n Names) jobsStreamSources(shard int) []*jetstream.StreamSource {
	return []*jetstream.StreamSource{{
		Name: n.SchedulesStream(),
		SubjectTransforms: []jetstream.SubjectTransformConfig{{
			Source:      n.FiredShardFilter(shard),
			Destination: n.JobsSubjects(),
		}},
	}}
}

// sourcesEqual compares the settings jobsStreamSources manages.
func sourcesEqual(have, want []*jetstream.StreamSource) bool {
	return slices.EqualFunc(have, want, func(a, b *jetstream.StreamSource) bool {
		return a.Name == b.Name && a.FilterSubject == b.FilterSubject && a.External == nil &&
			slices.Equal(a.SubjectTransforms, b.SubjectTransforms)
	})
}

// SchedulesStreamConfig is the configuration Provision gives the schedules
// stream: limits retention (a schedule stays until it is cancelled or, for
// a run_at, has fired), file storage, message schedules, roll-ups (one
// message per schedule subject) and message TTLs (the fired copies').
func SchedulesStreamConfig(names Names, cfg StreamConfig) jetstream.StreamConfig {
	cfg = cfg.withDefaults()
	return jetstream.StreamConfig{
		Name:              names.SchedulesStream(),
		Description:       "orgdispatch schedules (delayed and recurring jobs) and their fired copies",
		Subjects:          names.SchedulesSubjects(),
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
		AllowMsgSchedules: true,
		AllowRollup:       true,
		AllowMsgTTL:       true,
		Replicas:          cfg.Replicas,
		MaxMsgSize:        MaxJobBytes + jobHeaderRoom,
		AllowDirect:       true,
	}
}

// ScheduleSpec is a schedule to add: exactly one of RunAt and Cron.
type ScheduleSpec struct {
	// Name identifies the schedule within its tenant: 1–64 of A–Z a–z 0–9
	// _ -.
	Name string `json:"name"`
	// RunAt, for a delayed job, is when it runs, once; in the future. A
	// time within a second is rounded up to the next whole second (the
	// server's resolution), so the job never runs before it.
	RunAt *time.Time `json:"run_at,omitempty"`
	// Cron, for a recurring job, is a 6-field cron expression (see Cron),
	// read in TimeZone.
	Cron string `json:"cron,omitempty"`
	// TimeZone is the IANA zone of Cron, e.g. America/Chicago; "" is UTC.
	// Not with RunAt (an RFC 3339 time names its offset).
	TimeZone string `json:"time_zone,omitempty"`
	// Job is the job to run; its tenant, when set, must be the schedule's.
	Job Job `json:"job"`
}

// Schedule is a schedule as stored.
type Schedule struct {
	Tenant   string     `json:"tenant"`
	Name     string     `json:"name"`
	RunAt    *time.Time `json:"run_at,omitempty"`
	Cron     string     `json:"cron,omitempty"`
	TimeZone string     `json:"time_zone,omitempty"`
	// Next are the next fire times (up to 5; the one of a run_at), from
	// the schedule's pattern. A run_at that has passed is still listed
	// until the server has fired it.
	Next []time.Time `json:"next"`
	Job  Job         `json:"job"`
	// Added is when the schedule was stored; Sequence its message's stream
	// sequence.
	Added    time.Time `json:"added"`
	Sequence uint64    `json:"seq"`
}

// InvalidScheduleError says why a schedule cannot be added. The HTTP API
// answers 400.
type InvalidScheduleError struct {
	Reason string
}

func (e *InvalidScheduleError) Error() string { return "invalid schedule: " + e.Reason }

// ScheduleExistsError means the tenant has a schedule of that name: cancel
// it first. The HTTP API answers 409.
type ScheduleExistsError struct {
	Tenant, Name string
}

func (e *ScheduleExistsError) Error() string {
	return fmt.Sprintf("tenant %s already has a schedule %q: cancel it first", e.Tenant, e.Name)
}

// ScheduleNotFoundError means the tenant has no schedule of that name (a
// run_at that has fired is gone). The HTTP API answers 404.
type ScheduleNotFoundError struct {
	Tenant, Name string
}

func (e *ScheduleNotFoundError) Error() string {
	return fmt.Sprintf("tenant %s has no schedule %q", e.Tenant, e.Name)
}

// ScheduleOption configures Schedules.
type ScheduleOption func(*Schedules)

// WithScheduleClock sets the clock that run_at is checked against and next
// fire times are computed from (tests).
func WithScheduleClock(now func() time.Time) ScheduleOption {
	return func(s *Schedules) { s.now = now }
}

// WithFiredTTL sets the fired copies' TTL (default DefaultFiredTTL, at
// least 1 s).
func WithFiredTTL(d time.Duration) ScheduleOption {
	return func(s *Schedules) { s.firedTTL = max(d.Truncate(time.Second), time.Second) }
}

// Schedules adds, lists, shows and cancels tenants' schedules. Safe for
// concurrent use.
type Schedules struct {
	js       jetstream.JetStream
	names    Names
	now      func() time.Time
	firedTTL time.Duration
}

// NewSchedules returns the schedules of the installation names names.
func NewSchedules(js jetstream.JetStream, names Names, opts ...ScheduleOption) *Schedules {
	s := &Schedules{js: js, names: names, now: time.Now, firedTTL: DefaultFiredTTL}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Schedules are the schedules of the admin's installation.
func (a *Admin) Schedules(opts ...ScheduleOption) *Schedules {
	return NewSchedules(a.js, a.names, opts...)
}

// validScheduleName: a subject token, as tenant ids.
func validScheduleName(name string) bool { return ValidTenantID(name) }

func invalidSchedule(format string, args ...any) error {
	return &InvalidScheduleError{Reason: fmt.Sprintf(format, args...)}
}

// Add stores a new schedule of tenant. A bad spec is an
// *InvalidScheduleError (its job's problem included), a tenant that is not
// configured an *UnknownTenantError, a name in use a *ScheduleExistsError.
func (s *Schedules) Add(ctx context.Context, tenant string, spec ScheduleSpec) (Schedule, error) {
	if !ValidTenantID(tenant) {
		return Schedule{}, invalidSchedule("tenant %q: want 1-64 of A-Z a-z 0-9 _ -", tenant)
	}
	msg, sched, err := s.build(tenant, spec)
	if err != nil {
		return Schedule{}, err
	}
	if err := s.configured(ctx, tenant); err != nil {
		return Schedule{}, err
	}
	// The class's consumer is there before the job fires (best effort: a
	// worker replica creates it when it finds the fired job otherwise).
	_, _ = EnsureClassConsumer(ctx, s.js, s.names, tenant, sched.Job.EffectivePriority())
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return Schedule{}, &ScheduleExistsError{Tenant: tenant, Name: spec.Name}
		}
		if errors.As(err, &apiErr) && apiErr.Code == 400 {
			// nats-server's own checks (pattern, time zone — a server
			// without the zone's data refuses it).
			return Schedule{}, invalidSchedule("nats-server refused it: %s", apiErr.Description)
		}
		if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
			return Schedule{}, fmt.Errorf("dispatcher: add schedule %s of tenant %s: %w: %w", spec.Name, tenant, ErrUnavailable, err)
		}
		return Schedule{}, fmt.Errorf("dispatcher: add schedule %s of tenant %s: %w", spec.Name, tenant, err)
	}
	sched.Sequence, sched.Added = ack.Sequence, s.now().UTC()
	return sched, nil
}

// build checks spec and makes its message.
func (s *Schedules) build(tenant string, spec ScheduleSpec) (*nats.Msg, Schedule, error) {
	now := s.now()
	if !validScheduleName(spec.Name) {
		return nil, Schedule{}, invalidSchedule("name %q: want 1-64 of A-Z a-z 0-9 _ -", spec.Name)
	}
	job := spec.Job
	if job.Tenant != "" && job.Tenant != tenant {
		return nil, Schedule{}, invalidSchedule("job names tenant %q but the schedule is tenant %q's", job.Tenant, tenant)
	}
	job.Tenant = tenant
	if err := job.Validate(tenant); err != nil {
		return nil, Schedule{}, invalidSchedule("job: %s", strings.TrimPrefix(err.Error(), "invalid job: "))
	}
	sched := Schedule{Tenant: tenant, Name: spec.Name, Job: job}
	h := nats.Header{}
	switch {
	case spec.RunAt == nil && spec.Cron == "":
		return nil, Schedule{}, invalidSchedule("want run_at or cron")
	case spec.RunAt != nil && spec.Cron != "":
		return nil, Schedule{}, invalidSchedule("want run_at or cron, not both")
	case spec.RunAt != nil:
		if spec.TimeZone != "" {
			return nil, Schedule{}, invalidSchedule("time_zone is for cron; run_at names its offset (RFC 3339)")
		}
		at := spec.RunAt.UTC()
		if t := at.Truncate(time.Second); !t.Equal(at) {
			at = t.Add(time.Second)
		}
		if !at.After(now) {
			return nil, Schedule{}, invalidSchedule("run_at %s is not in the future (now %s)", spec.RunAt.Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339))
		}
		if job.Deadline != nil && !job.Deadline.After(at) {
			return nil, Schedule{}, invalidSchedule("the job's deadline %s is not after run_at %s", job.Deadline.Format(time.RFC3339), at.Format(time.RFC3339))
		}
		h.Set(hdrSchedule, "@at "+at.Format(time.RFC3339))
		sched.RunAt, sched.Next = &at, []time.Time{at}
	default:
		// One space between fields: the expression goes into headers, where
		// a line break would start another header.
		spec.Cron = strings.Join(strings.Fields(spec.Cron), " ")
		c, err := ParseCron(spec.Cron, spec.TimeZone)
		if err != nil {
			return nil, Schedule{}, invalidSchedule("%v", err)
		}
		if _, ok := c.Next(now); !ok {
			return nil, Schedule{}, invalidSchedule("cron %q never fires within five years", spec.Cron)
		}
		if job.Deadline != nil {
			return nil, Schedule{}, invalidSchedule("a cron schedule's job cannot have a deadline: it would apply to every occurrence")
		}
		if len(job.ID)+OccurrenceSuffixLen > 128 {
			return nil, Schedule{}, invalidSchedule("job id %q: at most %d characters for a cron schedule (each occurrence's id adds %d)", job.ID, 128-OccurrenceSuffixLen, OccurrenceSuffixLen)
		}
		h.Set(hdrSchedule, spec.Cron)
		h.Set(HeaderScheduleCron, spec.Cron)
		if spec.TimeZone != "" {
			h.Set(hdrScheduleTimeZone, spec.TimeZone)
			h.Set(HeaderScheduleTimeZone, spec.TimeZone)
		}
		sched.Cron, sched.TimeZone, sched.Next = spec.Cron, spec.TimeZone, c.NextN(now, 5)
	}
	body, err := json.Marshal(job)
	if err != nil {
		return nil, Schedule{}, invalidSchedule("job: %v", err)
	}
	if len(body) > MaxJobBytes {
		return nil, Schedule{}, invalidSchedule("job is %d bytes, larger than the %d byte limit", len(body), MaxJobBytes)
	}
	h.Set(hdrScheduleTarget, s.names.FiredSubject(tenant, job.EffectivePriority(), job.Op))
	h.Set(hdrScheduleTTL, s.firedTTL.String())
	// Create only: a schedule of that name is cancelled first.
	h.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	return &nats.Msg{Subject: s.names.ScheduleSubject(tenant, spec.Name), Header: h, Data: body}, sched, nil
}

// configured refuses a tenant that is not configured, as the Publisher
// does: its jobs stream does not listen on its subjects.
func (s *Schedules) configured(ctx context.Context, tenant string) error {
	st, err := s.js.Stream(ctx, s.names.JobsStream(tenant))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return &UnknownTenantError{Tenant: tenant}
	}
	if err != nil {
		return fmt.Errorf("dispatcher: tenant %s: %w", tenant, err)
	}
	if !slices.Contains(st.CachedInfo().Config.Subjects, s.names.TenantJobsFilter(tenant)) {
		return &UnknownTenantError{Tenant: tenant}
	}
	return nil
}

func (s *Schedules) stream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, s.names.SchedulesStream())
	if err != nil {
		return nil, fmt.Errorf("dispatcher: stream %s: %w", s.names.SchedulesStream(), err)
	}
	return st, nil
}

// List is tenant's schedules, by name.
func (s *Schedules) List(ctx context.Context, tenant string) ([]Schedule, error) {
	if !ValidTenantID(tenant) {
		return nil, &UnknownTenantError{Tenant: tenant}
	}
	if err := s.configured(ctx, tenant); err != nil {
		return nil, err
	}
	st, err := s.stream(ctx)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(s.names.TenantSchedulesFilter(tenant)))
	if err != nil {
		return nil, fmt.Errorf("dispatcher: list schedules of tenant %s: %w", tenant, err)
	}
	out := make([]Schedule, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		m, err := st.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // fired or cancelled meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("dispatcher: list schedules of tenant %s: %w", tenant, err)
		}
		if sc, ok := s.decode(tenant, m); ok {
			out = append(out, sc)
		}
	}
	slices.SortFunc(out, func(a, b Schedule) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get is tenant's schedule name: a *ScheduleNotFoundError when there is
// none (a run_at that has fired is gone).
func (s *Schedules) Get(ctx context.Context, tenant, name string) (Schedule, error) {
	if !ValidTenantID(tenant) {
		return Schedule{}, &UnknownTenantError{Tenant: tenant}
	}
	if err := s.configured(ctx, tenant); err != nil {
		return Schedule{}, err
	}
	if !validScheduleName(name) {
		return Schedule{}, &ScheduleNotFoundError{Tenant: tenant, Name: name}
	}
	st, err := s.stream(ctx)
	if err != nil {
		return Schedule{}, err
	}
	m, err := st.GetLastMsgForSubject(ctx, s.names.ScheduleSubject(tenant, name))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Schedule{}, &ScheduleNotFoundError{Tenant: tenant, Name: name}
	}
	if err != nil {
		return Schedule{}, fmt.Errorf("dispatcher: schedule %s of tenant %s: %w", name, tenant, err)
	}
	sc, ok := s.decode(tenant, m)
	if !ok {
		return Schedule{}, &ScheduleNotFoundError{Tenant: tenant, Name: name}
	}
	return sc, nil
}

// decode reads a stored schedule; ok is false for a message on a schedule
// subject that is not one (a purge marker).
func (s *Schedules) decode(tenant string, m *jetstream.RawStreamMsg) (Schedule, bool) {
	pattern := m.Header.Get(hdrSchedule)
	if pattern == "" {
		return Schedule{}, false
	}
	name := strings.TrimPrefix(m.Subject, s.names.prefix+".schedules."+tenant+".")
	sc := Schedule{Tenant: tenant, Name: name, Added: m.Time.UTC(), Sequence: m.Sequence}
	sc.Job, _ = DecodeJob(m.Data)
	now := s.now()
	if at, ok := strings.CutPrefix(pattern, "@at "); ok {
		if t, err := time.Parse(time.RFC3339, at); err == nil {
			t = t.UTC()
			sc.RunAt, sc.Next = &t, []time.Time{t}
		}
		return sc, true
	}
	sc.Cron, sc.TimeZone = pattern, m.Header.Get(hdrScheduleTimeZone)
	if c, err := ParseCron(sc.Cron, sc.TimeZone); err == nil {
		sc.Next = c.NextN(now, 5)
	}
	return sc, true
}

// Cancel removes tenant's schedule name: it never fires again (a job it
// fired already stays queued). A schedule that does not exist is a
// *ScheduleNotFoundError (or, for a tenant that is not configured, an
// *UnknownTenantError). A tenant that is not configured can still have
// its schedules cancelled.
func (s *Schedules) Cancel(ctx context.Context, tenant, name string) error {
	if !ValidTenantID(tenant) {
		return &UnknownTenantError{Tenant: tenant}
	}
	if !validScheduleName(name) {
		return &ScheduleNotFoundError{Tenant: tenant, Name: name}
	}
	st, err := s.stream(ctx)
	if err != nil {
		return err
	}
	subj := s.names.ScheduleSubject(tenant, name)
	// Only a subject holding a schedule is purged (a schedule's subject
	// holds one message: its roll-up).
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if err == nil && m.Header.Get(hdrSchedule) == "" {
		err = jetstream.ErrMsgNotFound
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		if cerr := s.configured(ctx, tenant); cerr != nil {
			return cerr
		}
		return &ScheduleNotFoundError{Tenant: tenant, Name: name}
	}
	if err != nil {
		return fmt.Errorf("dispatcher: cancel schedule %s of tenant %s: %w", name, tenant, err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
		return fmt.Errorf("dispatcher: cancel schedule %s of tenant %s: %w", name, tenant, err)
	}
	return nil
}

// ScheduledJob is the job a message fired by a schedule stands for; a
// message that was not fired (no Nats-Scheduler header) is job as it is.
// The worker calls it on every job before validating it.
//
//   - A schedule of another tenant cannot fire jobs of this one: the fired
//     message's Nats-Scheduler must be a schedule subject of tenant.
//   - A run_at fires once (Nats-Schedule-Next: purge): its job keeps its
//     id, and its status record is <tenant>.<id>.
//   - A cron schedule fires the same body each time, so each occurrence
//     gets an id of its own: <id>.<fire time, UTC, 20060102T150405Z>, e.g.
//     weekday-start.20261207T150000Z, and a status record of its own. The
//     fire time is the cron's last time before the message's
//     Nats-Schedule-Next (its headers Orgdispatch-Schedule-Cron and
//     -Time-Zone carry the expression); a message fired by a schedule
//     without them (a raw NATS producer's) is named by its
//     Nats-Schedule-Next instead.
func ScheduledJob(names Names, tenant string, job Job, h nats.Header) (Job, error) {
	scheduler := h.Get(hdrScheduler)
	if scheduler == "" {
		return job, nil
	}
	if rest, ok := strings.CutPrefix(scheduler, names.prefix+".schedules."+tenant+"."); !ok || rest == "" {
		return job, invalid("fired by %s, not a schedule of tenant %s", scheduler, tenant)
	}
	next := h.Get(hdrScheduleNext)
	if next == scheduleNextPurge || next == "" {
		return job, nil
	}
	nt, err := time.Parse(time.RFC3339Nano, next)
	if err != nil {
		return job, invalid("fired by %s with Nats-Schedule-Next %q: not an RFC 3339 time", scheduler, next)
	}
	occ := nt
	if expr := h.Get(HeaderScheduleCron); expr != "" {
		c, err := ParseCron(expr, h.Get(HeaderScheduleTimeZone))
		if err != nil {
			return job, invalid("fired by %s: %v", scheduler, err)
		}
		if p, ok := c.Prev(nt); ok {
			occ = p
		}
	}
	job.ID = OccurrenceID(job.ID, occ)
	return job, nil
}

// OccurrenceID is the id of a cron schedule's occurrence at t of the job
// id.
func OccurrenceID(id string, t time.Time) string {
	return id + "." + t.UTC().Format("20060102T150405Z")
}
