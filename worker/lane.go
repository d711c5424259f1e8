package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/condlog"
	"github.com/orgdispatch/orgdispatch/platform"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// condPull is the condlog condition of a lane that cannot bind or pull
// from its consumer.
const condPull = "tenant lane cannot pull"

// errShutdown is the cause given to jobs cancelled because the replica (or
// the lane, on reload) stopped and they did not finish in time.
var errShutdown = errors.New("worker: shutting down")

// lane runs one tenant's jobs on this replica: its own platform client
// (token), rate limiter, concurrency and pause knowledge. Lanes share
// nothing, so one tenant's 429s, slow answers or rejected credentials never
// delay another's requests.
type lane struct {
	p  *Pool
	id string

	gate    *gate
	pullers []*puller // one per class, in dispatcher.Priorities order
	done    *rateWindow
	cond    *condlog.Logger // this lane's fault conditions: one line each, not one per job

	// status writes this tenant's records (set by start; tests may set it).
	status     *statusWriter
	stopStatus context.CancelFunc
	statusDone chan struct{}

	mu         sync.Mutex
	tenant     tenants.Tenant
	client     *platform.Client
	headerPace float64 // rate: auto — requests/s from legacy inin-ratelimit-* headers; 0: none
	pacer      autoPacer
	quota      quotaLearner // rate: auto — the quota from the limits API and 429 bodies
	rateSource string       // where the limiter's rate comes from (RateSource*)
	lastErr    string
	lastErrAt  time.Time
	ackWait    time.Duration

	inFlight    atomic.Int64
	onWire      atomic.Int64 // API requests sent and not yet answered
	succeeded   atomic.Uint64
	retried     atomic.Uint64
	dead        atomic.Uint64
	rateLimited atomic.Uint64

	parkedNow   atomic.Bool   // parked on this replica: not pulling (see parking.go)
	wake        chan struct{} // cuts a parked wait short
	stopping    atomic.Bool
	pullCtx     context.Context // cancelled: stop pulling (shutdown phase 1)
	stopPulling context.CancelFunc
	jobsCtx     context.Context // cancelled with errShutdown: give up in-flight jobs (phase 2)
	cancelJobs  context.CancelCauseFunc
	pulled      chan struct{} // closed when every class's pull loop has exited
	jobs        sync.WaitGroup
}

// errNoClassConsumer: the tenant's urgent or bulk consumer does not exist
// (yet): the class has had no jobs since it was provisioned.
var errNoClassConsumer = errors.New("worker: no consumer for the class yet")

// classConsumerRecheck is how often a class without a consumer looks again
// on its own. The pool wakes it as soon as one is created (the server's
// advisory) or when it finds the class's jobs (sweepStrays, every 5 s), so
// this is only a backstop; with 10,000 tenants' unused classes it costs
// nats-server some 33 consumer info requests a second.
const classConsumerRecheck = 10 * time.Minute

// waitForConsumer waits until the pool says pl's consumer may exist now
// (wakeUp), or classConsumerRecheck, or ctx; false when ctx ended.
func (pl *puller) waitForConsumer(ctx context.Context) bool {
	t := time.NewTimer(classConsumerRecheck)
	defer t.Stop()
	select {
	case <-pl.wake:
		return true
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// wakeUp makes a puller waiting for its consumer look again.
func (pl *puller) wakeUp() {
	select {
	case pl.wake <- struct{}{}:
	default:
	}
}

// bound reports whether pl is pulling from its consumer now.
func (l *lane) bound(pl *puller) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return pl.iter != nil
}

// classPullExpiry is the pull request expiry of the urgent and bulk
// classes (the normal class keeps nats.go's 30 s).
const classPullExpiry = 2 * time.Minute

// puller is a lane's pull from one class consumer of its tenant. Each class
// has its own concurrency slots (the tenant's concurrency), so that a bulk
// backlog holding its slots while it waits for the limiter never keeps an
// urgent job from being pulled; the gate then lets the waiting classes'
// jobs through by weight (dispatcher.PriorityWeight).
type puller struct {
	class dispatcher.Priority
	index int // class's position in dispatcher.Priorities
	sem   *semaphore
	wake  chan struct{} // the pool saw the class's consumer created (waitForConsumer)

	// Guarded by the lane's mu.
	iter     jetstream.MessagesContext
	iterSize int
	restart  bool      // the iterator is being drained to pull with a new size
	created  time.Time // when the bound consumer was created
}

func newLane(p *Pool, t tenants.Tenant) (*lane, error) {
	l := &lane{
		p:      p,
		id:     t.ID,
		tenant: t,
		done:   newRateWindow(p.cfg.Now),
		pulled: make(chan struct{}),
		wake:   make(chan struct{}, 1),
		cond:   condlog.New(condlog.Config{Logger: p.log, Now: p.cfg.Now}),

		rateSource: RateSourceConfigured,
	}
	for i, c := range dispatcher.Priorities() {
		l.pullers = append(l.pullers, &puller{class: c, index: i, sem: newSemaphore(t.Concurrency), wake: make(chan struct{}, 1)})
	}
	l.gate = newGate(p.cfg.Now, laneRate(t, configuredRate(t), p.liveFor(t.ID)), burstOf(t))
	c, err := l.newClient(t)
	if err != nil {
		return nil, err
	}
	l.client = c
	l.pullCtx, l.stopPulling = context.WithCancel(context.Background())
	l.jobsCtx, l.cancelJobs = context.WithCancelCause(context.Background())
	return l, nil
}

func burstOf(t tenants.Tenant) int {
	if t.Burst < 1 {
		return 1
	}
	return t.Burst
}

func (l *lane) newClient(t tenants.Tenant) (*platform.Client, error) {
	c, err := platform.New(platform.Config{
		APIBase:             t.APIBase,
		TokenURL:            t.TokenURL,
		ClientID:            t.ClientID,
		ClientSecret:        t.ClientSecret.Reveal(),
		HTTPClient:          l.p.cfg.HTTPClient,
		AllowedPathPrefixes: t.AllowedPaths,
		DefaultRetryAfter:   l.p.cfg.DefaultRetryAfter,
		MaxRetryAfter:       l.p.cfg.MaxPause,
		BeforeRequest:       l.gate.before,
		OnSend:              func() { l.onWire.Add(1) },
		OnResponse:          l.onResponse,
		OnToken:             l.onToken,
		Now:                 l.p.cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("tenant %s: platform client: %w", t.ID, err)
	}
	return c, nil
}

func (l *lane) onResponse(status int, limit platform.RateLimit, elapsed time.Duration) {
	others := l.onWire.Add(-1)
	l.p.cfg.Hooks.PlatformResponse(l.id, status, elapsed)
	l.mu.Lock()
	auto := l.tenant.RateAuto
	l.mu.Unlock()
	if !auto {
		return
	}
	if perSec, ok := l.pacer.observe(l.p.cfg.Now(), limit, int(others)); ok {
		l.mu.Lock()
		l.headerPace = perSec
		l.mu.Unlock()
		l.applyRate()
	}
}

func (l *lane) onToken() { l.p.cfg.Hooks.TokenFetched(l.id) }

// applyRate sets the limiter to this replica's share of the tenant's quota.
func (l *lane) applyRate() {
	learnt, source := l.quota.learnt()
	l.mu.Lock()
	t := l.tenant
	perSec := configuredRate(t)
	switch {
	case !t.RateAuto:
		source = RateSourceConfigured
	case l.headerPace > 0: // a platform that still sends the legacy headers
		perSec, source = l.headerPace, RateSourceHeaders
	case learnt > 0:
		perSec = learnt
	default:
		source = RateSourceConfigured
	}
	l.rateSource = source
	l.mu.Unlock()
	live := l.p.liveFor(l.id)
	r := laneRate(t, perSec, live)
	l.gate.setLimit(r)
	// After a pause, replicas take turns: replica k of n starts k/(n·r) after
	// the pause's end, so the org's requests are spread 1/(n·r) apart instead
	// of leaving every replica at the same instant. A 429 then reaches every
	// replica (a few ms) before another one's next request is due.
	l.gate.setResumeOffset(time.Duration(float64(min(l.p.replicaRank(), live-1)) / (float64(live) * float64(r)) * float64(time.Second)))
	if b := burstOf(t); l.gate.limiter.Burst() != b {
		l.gate.limiter.SetBurst(b)
	}
}

// update applies a reloaded tenant: limits at once, new credentials or
// endpoints through a new client (jobs in flight finish on the old one), a
// new concurrency by restarting the pull with the new batch size.
func (l *lane) update(t tenants.Tenant) error {
	l.mu.Lock()
	old := l.tenant
	l.mu.Unlock()
	if credentialsChanged(old, t) {
		c, err := l.newClient(t)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.client = c
		l.mu.Unlock()
		l.gate.unpark() // new credentials deserve a try at once
		l.wakeUp()
	}
	l.mu.Lock()
	l.tenant = t
	if !t.RateAuto {
		l.headerPace = 0
		l.quota.forget()
	}
	l.mu.Unlock()
	l.applyRate()
	for _, pl := range l.pullers {
		pl.sem.resize(t.Concurrency)
		l.mu.Lock()
		it, size := pl.iter, pl.iterSize
		if it != nil && size != t.Concurrency {
			pl.restart = true
		}
		l.mu.Unlock()
		if it != nil && size != t.Concurrency {
			it.Drain() // the pull loop hands out what is buffered, then pulls anew
		}
	}
	return nil
}

// drainPulls ends every class's current pull: each iterator hands out what
// it buffered and pulls no more. restart says whether the pull loops should
// bind and pull again at once (repull) rather than stop or park.
func (l *lane) drainPulls(restart bool) {
	var its []jetstream.MessagesContext
	l.mu.Lock()
	for _, pl := range l.pullers {
		if pl.iter != nil {
			if restart {
				pl.restart = true
			}
			its = append(its, pl.iter)
		}
	}
	l.mu.Unlock()
	for _, it := range its {
		it.Drain()
	}
}

func credentialsChanged(a, b tenants.Tenant) bool {
	return a.ClientID != b.ClientID || a.ClientSecret.Reveal() != b.ClientSecret.Reveal() ||
		a.APIBase != b.APIBase || a.TokenURL != b.TokenURL || !slices.Equal(a.AllowedPaths, b.AllowedPaths)
}

func (l *lane) currentClient() *platform.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client
}

func (l *lane) maxAttempts() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tenant.MaxAttempts
}

func (l *lane) setError(msg string) {
	now := l.p.cfg.Now()
	l.mu.Lock()
	l.lastErr, l.lastErrAt = laneError(msg), now
	l.mu.Unlock()
}

// start runs the lane: its status writer, then its pull loop. The pool
// calls it (with p.status set) once per lane.
func (l *lane) start() {
	l.startStatus()
	go l.pull()
}

// startStatus starts the lane's own status writer; finishStop flushes and
// stops it.
func (l *lane) startStatus() {
	p := l.p
	l.status = newStatusWriter(p.cfg.JS, p.status, p.cfg.Names.StatusBucket(), l.id, p.log, l.cond)
	ctx, cancel := context.WithCancel(context.Background())
	l.stopStatus, l.statusDone = cancel, make(chan struct{})
	go func() {
		defer close(l.statusDone)
		l.status.run(ctx, p.cfg.ShutdownTimeout)
	}()
}

// pull runs until the lane stops: it binds the tenant's durable consumer and
// hands each message to a job goroutine as soon as a concurrency slot is
// free. The iterator never buffers more than the lane's concurrency, and the
// lane's concurrency bounds what this replica holds of the tenant's jobs, so
// a slow or paused lane holds no more than it can run soon.
func (l *lane) pull() {
	defer close(l.pulled)
	l.refreshLimits() // rate: auto: read the org's limits once at start
	var wg sync.WaitGroup
	for _, pl := range l.pullers {
		wg.Go(func() { l.pullClass(pl) })
	}
	wg.Wait()
}

// pullClass is the pull loop of one class.
func (l *lane) pullClass(pl *puller) {
	failures := 0
	for !l.stopping.Load() {
		if !l.waitWhileParked() {
			return
		}
		err := l.pullOnce(pl)
		if err == nil {
			failures = 0
			continue
		}
		if errors.Is(err, errNoClassConsumer) {
			failures = 0
			if !pl.waitForConsumer(l.pullCtx) {
				return
			}
			continue
		}
		if l.stopping.Load() {
			return
		}
		failures++
		l.setError(err.Error())
		l.cond.Report(slog.LevelWarn, l.id, condPull, "class", pl.class, "failures", failures, "error", err)
		wait := backoffCeiling(failures, l.p.cfg.BackoffBase, l.p.cfg.BackoffMax)
		select {
		case <-time.After(wait):
		case <-l.pullCtx.Done():
			return
		}
	}
}

// consumerCreatedAt is when the consumer pl pulls from was created.
func (l *lane) consumerCreatedAt(pl *puller) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return pl.created
}

// pullOnce binds pl's consumer, reads its pause (the normal class's, which
// replicas go by), and consumes until the iterator closes (stop, a
// concurrency change, the consumer went away).
func (l *lane) pullOnce(pl *puller) error {
	stream, name := l.p.cfg.Names.JobsStream(l.id), l.p.cfg.Names.PriorityConsumer(l.id, pl.class)
	ctx, cancel := context.WithTimeout(l.pullCtx, statusTimeout)
	asked := time.Now()
	cons, err := l.p.cfg.JS.Consumer(ctx, stream, name)
	cancel()
	if errors.Is(err, jetstream.ErrConsumerNotFound) && pl.class != dispatcher.PriorityNormal {
		// Created when the class has jobs (by the Publisher, or by this
		// pool when it finds them: sweepStrays); the pool wakes the pull.
		return errNoClassConsumer
	}
	if errors.Is(err, jetstream.ErrConsumerNotFound) && l.p.cfg.Streams != nil && !l.stopping.Load() {
		// Forgotten by a restarted server (memory storage), or deleted:
		// this lane's tenant is configured, so it has a consumer.
		ctx, cancel := context.WithTimeout(l.pullCtx, statusTimeout)
		l.mu.Lock()
		t := l.tenant
		l.mu.Unlock()
		cons, err = dispatcher.EnsureConsumerWith(ctx, l.p.cfg.JS, l.p.cfg.Names, *l.p.cfg.Streams, t)
		cancel()
		if err == nil {
			l.p.log.Info("tenant consumer was missing; created it again", "tenant", l.id, "consumer", name)
		}
	}
	if err != nil {
		return fmt.Errorf("bind consumer %s: %w", name, err)
	}
	l.cond.Clear(l.id, condPull)
	info := cons.CachedInfo()
	if pl.class == dispatcher.PriorityNormal {
		l.syncPause(info, asked)
	}
	l.mu.Lock()
	size := l.tenant.Concurrency
	l.ackWait = info.Config.AckWait
	pl.created = info.Created
	l.mu.Unlock()
	opts := []jetstream.PullMessagesOpt{jetstream.PullMaxMessages(size)}
	if pl.class != dispatcher.PriorityNormal {
		// Most tenants' urgent and bulk consumers are empty most of the
		// time: a longer pull (heartbeats every 30 s instead of 15 s, a new
		// pull request every 2 min instead of 30 s) keeps what an idle
		// class costs the server low; a job is delivered at once either way.
		opts = append(opts, jetstream.PullExpiry(classPullExpiry))
	}
	it, err := cons.Messages(opts...)
	if err != nil {
		return fmt.Errorf("pull from consumer %s: %w", name, err)
	}
	l.mu.Lock()
	pl.iter, pl.iterSize = it, size
	l.mu.Unlock()
	if l.stopping.Load() || l.parkedNowAt(l.p.cfg.Now()) {
		// Stopping or parked meanwhile (beginStop, parkAndStopPulling found
		// no iterator to drain): hand out what comes, pull no more.
		it.Drain()
	}
	l.consume(it, pl)
	l.mu.Lock()
	pl.iter = nil
	restart := pl.restart
	pl.restart = false
	l.mu.Unlock()
	if restart || l.stopping.Load() || l.parkedNowAt(l.p.cfg.Now()) {
		return nil
	}
	// Closed by the server or the connection (consumer deleted, …): bind
	// again after a backoff.
	return fmt.Errorf("pull from consumer %s: message iterator closed", name)
}

func (l *lane) consume(it jetstream.MessagesContext, pl *puller) {
	for {
		acquired := false
		if !l.stopping.Load() {
			acquired = pl.sem.acquire(l.pullCtx) == nil
		}
		msg, err := it.Next(jetstream.NextContext(l.jobsCtx))
		if err != nil {
			if acquired {
				pl.sem.release()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || l.jobsCtx.Err() != nil {
				it.Stop()
				return
			}
			l.p.log.Debug("tenant lane pull", "tenant", l.id, "error", err)
			select { // no hot loop on a failing iterator
			case <-time.After(100 * time.Millisecond):
			case <-l.pullCtx.Done():
			}
			continue
		}
		if !acquired || l.stopping.Load() {
			// Stopping: a message that was buffered but not started goes back
			// at once, for another replica (or the next start) to run.
			if acquired {
				pl.sem.release()
			}
			l.handBackUnstarted(msg)
			continue
		}
		l.jobs.Add(1)
		l.inFlight.Add(1)
		go func() {
			defer l.jobs.Done()
			defer pl.sem.release()
			defer l.inFlight.Add(-1)
			l.handle(msg, pl)
		}()
	}
}

// keepAlive tells the server every half AckWait that msg is still being
// worked on (waiting for the limiter, or a slow answer), so that it is not
// redelivered to another replica meanwhile. It returns the stop function.
func (l *lane) keepAlive(msg jetstream.Msg) func() {
	l.mu.Lock()
	every := l.ackWait / 2
	l.mu.Unlock()
	if every <= 0 {
		return func() {}
	}
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	var tick func()
	tick = func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		_ = msg.InProgress()
		t = time.AfterFunc(every, tick)
	}
	mu.Lock()
	t = time.AfterFunc(every, tick)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}

// beginStop is shutdown phase 1: pull no more; buffered messages are handed
// back by the pull loop.
func (l *lane) beginStop() {
	l.stopping.Store(true)
	l.stopPulling()
	l.drainPulls(false)
}

// finishStop is phase 2: wait until the pull loop has handed back what it
// buffered and the jobs in flight are done, at most until deadline; then
// cancel what is left (those jobs hand themselves back).
func (l *lane) finishStop(deadline <-chan struct{}) {
	select {
	case <-l.pulled:
	case <-deadline:
		l.cancelJobs(errShutdown)
		<-l.pulled
	}
	// The pull loop has exited: no job starts any more.
	idle := make(chan struct{})
	go func() {
		l.jobs.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-deadline:
		l.cancelJobs(errShutdown)
		<-idle
	}
	l.cancelJobs(errShutdown)
	// No job runs any more: flush the lane's status records.
	if l.stopStatus != nil {
		l.stopStatus()
		<-l.statusDone
	}
}

// syncPause adopts the consumer's pause as the server reports it (at bind
// and after a reconnect). asked is when the information was requested: a
// local pause set after it is newer and is kept.
func (l *lane) syncPause(info *jetstream.ConsumerInfo, asked time.Time) {
	if info == nil {
		return
	}
	if info.Paused && info.Config.PauseUntil != nil {
		l.learnPause(*info.Config.PauseUntil, "consumer is paused")
		return
	}
	if l.gate.resume(asked) {
		l.p.cfg.Hooks.PauseChanged(l.id, time.Time{})
		l.p.log.Info("tenant resumed", "tenant", l.id)
	}
}

// learnPause merges a pause into the lane's knowledge (later wins).
func (l *lane) learnPause(until time.Time, why string) bool {
	if !until.After(l.p.cfg.Now()) || !l.gate.pause(until, 0) {
		return false
	}
	l.p.cfg.Hooks.PauseChanged(l.id, until)
	l.p.log.Info("tenant paused", "tenant", l.id, "until", until.UTC().Format(time.RFC3339), "reason", why)
	return true
}

// report is the lane's LaneReport.
func (l *lane) report() dispatcher.LaneReport {
	l.mu.Lock()
	r := dispatcher.LaneReport{
		Tenant:      l.id,
		Parked:      l.parkedNow.Load(),
		LastError:   l.lastErr,
		LastErrorAt: l.lastErrAt,
		RateSource:  l.rateSource,
	}
	l.mu.Unlock()
	r.InFlight = int(l.inFlight.Load())
	r.RateWaiting = int(l.gate.rateWaiting.Load())
	r.Concurrency = l.pullers[0].sem.capacity()
	r.Succeeded = l.succeeded.Load()
	r.Retried = l.retried.Load()
	r.Dead = l.dead.Load()
	r.RateLimited = l.rateLimited.Load()
	r.RatePerSec = float64(l.gate.limiter.Limit())
	r.DonePerSec = l.done.perSecond()
	r.PausedUntil = l.gate.paused()
	parkState, _ := l.gate.parked()
	switch {
	case l.stopping.Load():
		r.State = dispatcher.LaneStopped
	case parkState != "":
		r.State = parkState
	case !r.PausedUntil.IsZero():
		r.State = dispatcher.LanePaused
	default:
		r.State = dispatcher.LaneRunning
	}
	return r
}
