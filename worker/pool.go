package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/condlog"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// Pool runs the tenant lanes of one worker replica. Build it with New, run
// it with Run; Lanes and Update may be called at any time.
type Pool struct {
	cfg Config
	log *slog.Logger

	status  jetstream.KeyValue // the status bucket; each lane writes its records with its own writer
	live    atomic.Int64
	rank    atomic.Int64  // this replica's place among the live ones, by id
	pages   atomic.Int64  // pages of lane figures the heartbeat announces
	beatNow chan struct{} // asks the heartbeat to beat now (a lane parked or resumed)
	// laneReports is Lanes; tests give it many lanes' figures without
	// running the lanes.
	laneReports func() []dispatcher.LaneReport

	cond *condlog.Logger // the replica's own fault conditions (its heartbeat)

	peersMu     sync.Mutex
	parkedPeers map[string]int // tenant → live peers whose lane of it is parked

	mu       sync.Mutex
	lanes    map[string]*lane
	running  bool // Run has started the lanes and not begun stopping
	ran      bool
	retiring sync.WaitGroup // lanes removed by Update, still draining
}

// New checks cfg, applies its defaults and builds a lane (with its platform
// client) for every tenant. Nothing runs until Run.
func New(cfg Config) (*Pool, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &Pool{cfg: cfg, log: cfg.Logger.With("replica", cfg.ReplicaID), lanes: map[string]*lane{}, beatNow: make(chan struct{}, 1)}
	p.cond = condlog.New(condlog.Config{Logger: p.log, Now: cfg.Now})
	p.live.Store(1)
	p.laneReports = p.Lanes
	for _, t := range cfg.Tenants {
		l, err := newLane(p, t)
		if err != nil {
			return nil, fmt.Errorf("worker: %w", err)
		}
		p.lanes[t.ID] = l
	}
	p.tenantsChanged()
	return p, nil
}

// tenantsChanged tells the hooks the pool's tenants, if they want to know.
func (p *Pool) tenantsChanged() {
	o, ok := p.cfg.Hooks.(TenantsObserver)
	if !ok {
		return
	}
	lanes := p.laneList()
	ids := make([]string, len(lanes))
	for i, l := range lanes {
		ids[i] = l.id
	}
	o.TenantsChanged(ids)
}

// Run runs every lane, the heartbeat and the pause watch until ctx is done,
// then shuts down in two phases: the lanes stop pulling and hand back what
// they buffered, jobs in flight get ShutdownTimeout to finish, and those that
// have not are cancelled and handed back (Nak) — none is dropped. It returns
// nil after a clean shutdown, or an error if it cannot start (for instance
// when the buckets have not been provisioned). Run may be called once.
func (p *Pool) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.ran {
		p.mu.Unlock()
		return errors.New("worker: Run called twice")
	}
	p.ran = true
	p.mu.Unlock()

	statusKV, err := p.cfg.JS.KeyValue(ctx, p.cfg.Names.StatusBucket())
	if err != nil {
		return fmt.Errorf("worker: status bucket %s (provision first): %w", p.cfg.Names.StatusBucket(), err)
	}
	replicasKV, err := p.cfg.JS.KeyValue(ctx, p.cfg.Names.ReplicasBucket())
	if err != nil {
		return fmt.Errorf("worker: replicas bucket %s (provision first): %w", p.cfg.Names.ReplicasBucket(), err)
	}
	lanesKV, err := p.cfg.JS.KeyValue(ctx, p.cfg.Names.LanesBucket())
	if err != nil {
		return fmt.Errorf("worker: lanes bucket %s (provision first): %w", p.cfg.Names.LanesBucket(), err)
	}
	p.mu.Lock()
	p.status = statusKV
	p.mu.Unlock()
	// Watch pauses before the lanes read their consumers: no advisory falls
	// between the read and the subscription.
	stopWatch, err := p.watchPauses()
	if err != nil {
		return err
	}
	stopLeaders, err := p.watchLeaders()
	if err != nil {
		stopWatch()
		return err
	}
	stopCreated, err := p.watchCreated()
	if err != nil {
		stopLeaders()
		stopWatch()
		return err
	}
	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	hbReady := make(chan struct{})
	figuresDone := make(chan struct{})
	go func() {
		defer close(figuresDone)
		w := newPageWriter(hbCtx, p.cfg.JS, lanesKV, p.cfg.Names.LanesBucket(), p.cfg.ReplicaID, p.cfg.Now, p.log)
		w.cond = p.cond
		p.figures(hbCtx, w)
	}()
	go func() {
		defer close(hbDone)
		p.heartbeat(hbCtx, replicasKV, hbReady)
	}()
	select {
	case <-hbReady:
	case <-time.After(p.cfg.HeartbeatInterval):
		p.log.Warn("replicas not known yet; starting lanes at the whole quota")
	case <-ctx.Done():
	}

	p.mu.Lock()
	p.running = true
	for _, l := range p.lanes {
		l.start()
	}
	n := len(p.lanes)
	p.mu.Unlock()
	p.log.Info("worker running", "tenants", n)
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		p.sweepStrays(sweepCtx)
	}()

	<-ctx.Done()
	stopSweep()
	<-sweepDone
	p.log.Info("worker stopping", "cause", context.Cause(ctx))
	p.shutdown()
	stopHeartbeat()
	<-hbDone
	<-figuresDone
	stopCreated()
	stopLeaders()
	stopWatch()
	p.log.Info("worker stopped")
	return nil
}

// shutdown stops every lane in two phases (see Run).
func (p *Pool) shutdown() {
	p.mu.Lock()
	p.running = false
	lanes := make([]*lane, 0, len(p.lanes))
	for _, l := range p.lanes {
		lanes = append(lanes, l)
	}
	p.mu.Unlock()

	for _, l := range lanes {
		l.beginStop()
	}
	deadline := make(chan struct{})
	timer := time.AfterFunc(p.cfg.ShutdownTimeout, func() { close(deadline) })
	defer timer.Stop()
	var wg sync.WaitGroup
	for _, l := range lanes {
		wg.Go(func() { l.finishStop(deadline) })
	}
	wg.Wait()
	p.retiring.Wait()
}

// Lanes reports every lane of this replica, by tenant id.
func (p *Pool) Lanes() []dispatcher.LaneReport {
	lanes := p.laneList()
	out := make([]dispatcher.LaneReport, 0, len(lanes))
	for _, l := range lanes {
		out = append(out, l.report())
	}
	return out
}

// Update applies a reloaded tenant list: new tenants get a lane, changed
// ones get their new limits, concurrency or credentials without losing a
// message, and removed ones are drained: they pull no more, hand back what
// they buffered, and their jobs in flight get ShutdownTimeout before they
// are cancelled and handed back. Update returns once the removed lanes have
// stopped, or when ctx is done (they go on stopping in the background).
//
// The consumers themselves are the provisioner's (dispatcher.EnsureConsumer,
// RemoveConsumer); a lane whose consumer does not exist yet retries until it
// does.
func (p *Pool) Update(ctx context.Context, ts []tenants.Tenant) error {
	seen := map[string]bool{}
	for _, t := range ts {
		if err := validTenant(t); err != nil {
			return fmt.Errorf("worker: update: %w", err)
		}
		if seen[t.ID] {
			return fmt.Errorf("worker: update: tenant %s listed twice", t.ID)
		}
		seen[t.ID] = true
	}
	p.mu.Lock()
	var errs []error
	for _, t := range ts {
		if l, ok := p.lanes[t.ID]; ok {
			if err := l.update(t); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		l, err := newLane(p, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.lanes[t.ID] = l
		if p.running {
			l.start()
		}
		p.log.Info("tenant lane added", "tenant", t.ID)
	}
	var stopped []chan struct{}
	for id, l := range p.lanes {
		if seen[id] {
			continue
		}
		delete(p.lanes, id)
		p.log.Info("tenant lane removed", "tenant", id)
		if !p.running {
			continue
		}
		l.beginStop()
		done := make(chan struct{})
		stopped = append(stopped, done)
		p.retiring.Go(func() {
			defer close(done)
			deadline := make(chan struct{})
			timer := time.AfterFunc(p.cfg.ShutdownTimeout, func() { close(deadline) })
			defer timer.Stop()
			l.finishStop(deadline)
		})
	}
	p.mu.Unlock()
	p.tenantsChanged()
	for _, done := range stopped {
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("removed lanes still stopping: %w", context.Cause(ctx)))
			return fmt.Errorf("worker: update: %w", errors.Join(errs...))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("worker: update: %w", err)
	}
	return nil
}

func (p *Pool) lane(tenant string) *lane {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lanes[tenant]
}

func (p *Pool) laneList() []*lane {
	p.mu.Lock()
	lanes := make([]*lane, 0, len(p.lanes))
	for _, l := range p.lanes {
		lanes = append(lanes, l)
	}
	p.mu.Unlock()
	slices.SortFunc(lanes, func(a, b *lane) int { return strings.Compare(a.id, b.id) })
	return lanes
}
