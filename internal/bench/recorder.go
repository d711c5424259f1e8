package bench

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// Every bench job is a campaign.get of a campaign whose UUID-shaped id names
// the tenant (by index) and the job's sequence number:
// TTTTTTTT-0000-4000-8000-SSSSSSSSSSSS (hex). The simulator's OnRequest hook
// sees the request path, so every API call is attributed to its job without
// trusting any client-side bookkeeping. Sequence 0 is a tenant's shared
// campaign, used where per-job latency is not measured (no per-job campaign
// piles up in the simulator).
const campaignPrefix = "/api/v2/outbound/campaigns/"

func campaignID(tenant int, seq uint64) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", tenant, seq)
}

// jobParams is the campaign.get params of a job.
func jobParams(tenant int, seq uint64) []byte {
	return []byte(`{"campaign_id":"` + campaignID(tenant, seq) + `"}`)
}

// parseCampaignPath recovers tenant and sequence from an API request path.
func parseCampaignPath(path string) (tenant int, seq uint64, ok bool) {
	id, found := strings.CutPrefix(path, campaignPrefix)
	if !found || len(id) < 36 || id[8] != '-' || id[23] != '-' {
		return 0, 0, false
	}
	if i := strings.IndexByte(id, '/'); i >= 0 {
		id = id[:i]
	}
	if len(id) != 36 {
		return 0, 0, false
	}
	t, err := strconv.ParseUint(id[:8], 16, 32)
	if err != nil {
		return 0, 0, false
	}
	s, err := strconv.ParseUint(id[24:], 16, 64)
	if err != nil {
		return 0, 0, false
	}
	return int(t), s, true
}

// recorder collects what the simulator saw, attributed to tenants and jobs:
// per-tenant counts of 2xx and 429 answers in time buckets, each tenant's
// first request, per job the publish time and the time of its first 2xx
// call, and optionally every API request with its exact time.
type recorder struct {
	epoch   time.Time
	bucket  time.Duration
	nb      int
	tenants int

	ok, limited, pub []atomic.Int32 // [tenant*nb + bucket]
	firstCall        []atomic.Int64 // per tenant: ns since epoch + 1, 0 = none yet
	firstCount       atomic.Int64   // tenants with a first call

	totalOK, total429, totalOther, foreign atomic.Int64

	// Per job (index = sequence number; 0 unused).
	maxJobs  uint64
	nextSeq  atomic.Uint64
	jobTen   []int32
	pubAt    []atomic.Int64 // ns since epoch + 1
	calledAt []atomic.Int64 // first 2xx, ns since epoch + 1

	keepEvents bool
	evMu       sync.Mutex
	events     []event
	maxEvents  int
}

// event is one API request as the simulator answered it.
type event struct {
	Tenant   int
	At       time.Duration // arrival, since epoch
	Answered time.Duration // when the answer was decided and about to be written (after the simulator's latency)
	Status   int
}

// newRecorder makes a recorder whose buckets cover span from epoch.
// maxJobs bounds the jobs that can be registered (0: none tracked).
func newRecorder(epoch time.Time, tenants int, span, bucket time.Duration, maxJobs uint64) *recorder {
	nb := int(span/bucket) + 1
	return &recorder{
		epoch:     epoch,
		bucket:    bucket,
		nb:        nb,
		tenants:   tenants,
		ok:        make([]atomic.Int32, tenants*nb),
		limited:   make([]atomic.Int32, tenants*nb),
		pub:       make([]atomic.Int32, tenants*nb),
		firstCall: make([]atomic.Int64, tenants),
		maxJobs:   maxJobs,
		jobTen:    make([]int32, maxJobs+1),
		pubAt:     make([]atomic.Int64, maxJobs+1),
		calledAt:  make([]atomic.Int64, maxJobs+1),
	}
}

// keep makes the recorder keep up to n API requests with their exact times.
func (r *recorder) keep(n int) {
	r.keepEvents = true
	r.maxEvents = n
	r.events = make([]event, 0, min(n, 1<<16))
}

func (r *recorder) since(t time.Time) time.Duration { return t.Sub(r.epoch) }

// newJob registers a job of tenant and returns its sequence number, or 0
// when the recorder's job capacity is used up.
func (r *recorder) newJob(tenant int) uint64 {
	seq := r.nextSeq.Add(1)
	if seq > r.maxJobs {
		return 0
	}
	r.jobTen[seq] = int32(tenant)
	return seq
}

// published records that the tenant's job seq (0: not tracked) was handed
// to the publisher at t.
func (r *recorder) published(tenant int, seq uint64, t time.Time) {
	at := r.since(t)
	if seq > 0 && seq <= r.maxJobs {
		r.pubAt[seq].Store(int64(at) + 1)
	}
	if at >= 0 {
		if i := int(at / r.bucket); i < r.nb {
			r.pub[tenant*r.nb+i].Add(1)
		}
	}
}

// observe is the simulator's OnRequest hook.
func (r *recorder) observe(req platformtest.Request) {
	tenant, seq, ok := parseCampaignPath(req.Path)
	if !ok || tenant >= r.tenants {
		if strings.HasPrefix(req.Path, "/api/") {
			r.foreign.Add(1)
		}
		return
	}
	at := r.since(req.At)
	if r.firstCall[tenant].CompareAndSwap(0, int64(at)+1) {
		r.firstCount.Add(1)
	}
	b := -1
	if at >= 0 {
		if i := int(at / r.bucket); i < r.nb {
			b = tenant*r.nb + i
		}
	}
	switch {
	case req.Status >= 200 && req.Status < 300:
		r.totalOK.Add(1)
		if b >= 0 {
			r.ok[b].Add(1)
		}
		if seq > 0 && seq <= r.maxJobs {
			r.calledAt[seq].CompareAndSwap(0, int64(at)+1)
		}
	case req.Status == 429:
		r.total429.Add(1)
		if b >= 0 {
			r.limited[b].Add(1)
		}
	default:
		r.totalOther.Add(1)
	}
	if r.keepEvents {
		r.evMu.Lock()
		if len(r.events) < r.maxEvents {
			r.events = append(r.events, event{Tenant: tenant, At: at, Answered: r.since(time.Now()), Status: req.Status})
		}
		r.evMu.Unlock()
	}
}

// bucketsOf returns the bucket range [from, to) covering [a, b) since epoch.
func (r *recorder) bucketsOf(a, b time.Duration) (int, int) {
	from := max(0, int(a/r.bucket))
	to := min(r.nb, int((b+r.bucket-1)/r.bucket))
	return from, to
}

// What count counts.
const (
	countOK = iota
	count429
	countPublished
)

// count sums a tenant's 2xx answers, 429 answers or published jobs in
// [a, b) since epoch, at bucket resolution.
func (r *recorder) count(tenant int, a, b time.Duration, what int) int {
	arr := r.ok
	switch what {
	case count429:
		arr = r.limited
	case countPublished:
		arr = r.pub
	}
	from, to := r.bucketsOf(a, b)
	n := 0
	for i := from; i < to; i++ {
		n += int(arr[tenant*r.nb+i].Load())
	}
	return n
}

// series returns a tenant's 2xx answers per second in consecutive buckets of
// width step (a multiple of the recorder's bucket) over [a, b).
func (r *recorder) series(tenant int, a, b, step time.Duration) []float64 {
	var out []float64
	for t := a; t+step <= b; t += step {
		out = append(out, float64(r.count(tenant, t, t+step, countOK))/step.Seconds())
	}
	return out
}

// jobLatencies returns, for the tenant's jobs published in [a, b) since
// epoch, the publish-to-first-2xx latencies of the served ones and the
// number never served.
func (r *recorder) jobLatencies(tenant int, a, b time.Duration) (served []time.Duration, unserved int) {
	n := min(r.nextSeq.Load(), r.maxJobs)
	for seq := uint64(1); seq <= n; seq++ {
		if int(r.jobTen[seq]) != tenant {
			continue
		}
		p := r.pubAt[seq].Load()
		if p == 0 {
			continue
		}
		pub := time.Duration(p - 1)
		if pub < a || pub >= b {
			continue
		}
		c := r.calledAt[seq].Load()
		if c == 0 {
			unserved++
			continue
		}
		served = append(served, time.Duration(c-1)-pub)
	}
	return served, unserved
}

// eventsCopy returns the kept events.
func (r *recorder) eventsCopy() []event {
	r.evMu.Lock()
	defer r.evMu.Unlock()
	return append([]event(nil), r.events...)
}

// first returns the time of the tenant's first API request since epoch.
func (r *recorder) first(tenant int) (time.Duration, bool) {
	v := r.firstCall[tenant].Load()
	return time.Duration(v - 1), v != 0
}
