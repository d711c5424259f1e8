package faultsuite

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// simPlatform is the platform simulator served over HTTP on 127.0.0.1, with
// one listener per orgdispatch process (so that the requests of each
// process can be told apart), and the record of every job's successes.
//
// A job's campaign id is its job id; a 2xx answer to POST
// /api/v2/outbound/campaigns/{id}/start is that job's success.
type simPlatform struct {
	// Sim is the simulator: faults are injected through it.
	Sim *platformtest.Simulator

	mu        sync.Mutex
	successes map[string][]time.Time // tenant → times of its jobs' 2xx answers, in order
	jobOK     map[string]*jobRecord  // tenant/job id → its 2xx answers
	lastCall  map[string]time.Time   // origin (process name) → its latest API request
	servers   []*http.Server
	closed    bool
}

// startPath and startSuffix bracket a job id in the path of the operation
// every job of the suite runs (campaign.start).
const (
	startPath   = "/api/v2/outbound/campaigns/"
	startSuffix = "/start"
)

func newPlatform(cfg platformtest.Config) *simPlatform {
	cfg.MaxRecorded = -1 // the hook sees every request; no ring needed
	p := &simPlatform{
		Sim:       platformtest.New(cfg),
		successes: map[string][]time.Time{},
		jobOK:     map[string]*jobRecord{},
		lastCall:  map[string]time.Time{},
	}
	p.Sim.OnRequest(p.observe)
	return p
}

// observe is the simulator's OnRequest hook: it counts each job's 2xx
// answers and notes when each tenant succeeded.
func (p *simPlatform) observe(r platformtest.Request) {
	if r.Status/100 != 2 || r.Method != http.MethodPost || !strings.HasPrefix(r.Path, startPath) || !strings.HasSuffix(r.Path, startSuffix) {
		return
	}
	id := strings.TrimSuffix(strings.TrimPrefix(r.Path, startPath), startSuffix)
	now := time.Now()
	p.mu.Lock()
	p.successes[r.Org] = append(p.successes[r.Org], now)
	k := r.Org + "/" + id
	if jr := p.jobOK[k]; jr != nil {
		jr.n++
	} else {
		p.jobOK[k] = &jobRecord{n: 1, first: now}
	}
	p.mu.Unlock()
}

// jobRecord is one job's successes at the platform.
type jobRecord struct {
	n     int       // 2xx answers
	first time.Time // the first one
}

// listen serves the simulator on a new 127.0.0.1 listener for the process
// named origin and returns its base URL.
func (p *simPlatform) listen(origin string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("faultsuite: platform listener: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				p.mu.Lock()
				p.lastCall[origin] = time.Now()
				p.mu.Unlock()
			}
			p.Sim.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.Close()
		return "", errors.New("faultsuite: platform closed")
	}
	p.servers = append(p.servers, srv)
	p.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), nil
}

// lastCallOf is when the process named origin last sent an API request.
func (p *simPlatform) lastCallOf(origin string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastCall[origin]
}

// successTimes is a copy of tenant's success times.
func (p *simPlatform) successTimes(tenant string) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.successes[tenant]...)
}

// succeeded counts tenant's 2xx answers so far.
func (p *simPlatform) succeeded(tenant string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.successes[tenant])
}

// jobSuccesses is how many 2xx answers tenant's job id got, and when the
// first came.
func (p *simPlatform) jobSuccesses(tenant, id string) (int, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if jr := p.jobOK[tenant+"/"+id]; jr != nil {
		return jr.n, jr.first
	}
	return 0, time.Time{}
}

// close stops every listener.
func (p *simPlatform) close() {
	p.mu.Lock()
	p.closed = true
	servers := p.servers
	p.servers = nil
	p.mu.Unlock()
	for _, s := range servers {
		_ = s.Close()
	}
}
