package worker

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// first429 returns the first 429 among reqs.
func first429(t *testing.T, reqs []platformtest.Request) (int, platformtest.Request) {
	t.Helper()
	for i, r := range reqs {
		if r.Status == http.StatusTooManyRequests {
			return i, r
		}
	}
	t.Fatalf("no 429 among %d requests", len(reqs))
	return 0, platformtest.Request{}
}

func count(reqs []platformtest.Request, keep func(platformtest.Request) bool) int {
	n := 0
	for _, r := range reqs {
		if keep(r) {
			n++
		}
	}
	return n
}

// Issue 3, test 1: tenant A is rate limited and paused; B and C run at
// their configured 10 requests/s, and their requests keep their pace while
// A is paused.
func TestRateLimitedTenantDoesNotSlowOthers(t *testing.T) {
	const retryAfter = 2 * time.Second
	const perTenant = 20
	e := newEnv(t, platformtest.Config{}, "a", "b", "c")
	ta, tb, tc := e.tenant("a", nil), e.tenant("b", nil), e.tenant("c", nil) // 600/min: 10/s
	e.provision(ta, tb, tc)
	reqs := watchRequests(e.sim)
	e.sim.Throttle("client_a", 1, retryAfter)
	for i := range 4 {
		e.publish("a", getJob(fmt.Sprintf("a%d", i), "ca"))
	}
	for i := range perTenant {
		e.publish("b", getJob(fmt.Sprintf("b%d", i), "cb"))
		e.publish("c", getJob(fmt.Sprintf("c%d", i), "cc"))
	}
	hooks := newRecHooks()
	e.start(e.config("r1", hooks, ta, tb, tc))
	hooks.waitFor(t, "every job to succeed", 20*time.Second, func(h *recHooks) bool {
		return h.finished["a"]["succeeded"] == 4 && h.finished["b"]["succeeded"] == perTenant && h.finished["c"]["succeeded"] == perTenant
	})

	// A: one 429, then no request until Retry-After has passed.
	ar := reqs.of("a")
	i, limited := first429(t, ar)
	if n := count(ar, func(r platformtest.Request) bool { return r.Status == 429 }); n != 1 {
		t.Errorf("tenant a got %d 429s, want 1", n)
	}
	pauseEnd := limited.At.Add(retryAfter)
	for _, r := range ar[i+1:] {
		if r.At.Before(pauseEnd) {
			t.Errorf("tenant a request at +%s during its %s pause", r.At.Sub(limited.At), retryAfter)
		}
	}
	if got := hooks.count("a", OutcomeRateLimited); got != 1 {
		t.Errorf("tenant a rate_limited outcomes: %d, want 1", got)
	}

	// B and C: their configured pace, undisturbed by A's pause.
	const want = 10.0 // requests/s
	for _, id := range []string{"b", "c"} {
		rs := reqs.of(id)
		if len(rs) != perTenant {
			t.Fatalf("tenant %s: %d requests, want %d", id, len(rs), perTenant)
		}
		if n := count(rs, func(r platformtest.Request) bool { return r.Status == 200 }); n != perTenant {
			t.Errorf("tenant %s: %d answers 200, want %d", id, n, perTenant)
		}
		span := rs[len(rs)-1].At.Sub(rs[0].At)
		rate := float64(len(rs)-1) / span.Seconds()
		t.Logf("tenant %s: %.2f requests/s over %s (want %.0f ±20%%)", id, rate, span.Round(time.Millisecond), want)
		if rate < want*0.8 || rate > want*1.2 {
			t.Errorf("tenant %s ran at %.2f requests/s, want %.0f ±20%%", id, rate, want)
		}
		during, maxGap := 0, time.Duration(0)
		for j := 1; j < len(rs); j++ {
			if rs[j].At.Before(limited.At) || !rs[j].At.Before(pauseEnd) {
				continue
			}
			during++
			maxGap = max(maxGap, rs[j].At.Sub(rs[j-1].At))
		}
		t.Logf("tenant %s: %d requests during a's pause, largest gap %s (pace %s)", id, during, maxGap.Round(time.Millisecond), time.Second/want)
		if during < 10 {
			t.Errorf("tenant %s: only %d requests during a's %s pause, want ≥ 10", id, during, retryAfter)
		}
		// 5× the pace: scheduling noise on a loaded machine, but far below the pause.
		if maxGap > 5*time.Second/want {
			t.Errorf("tenant %s: a gap of %s between requests during a's pause (pace %s)", id, maxGap, time.Second/want)
		}
	}
}

// Issue 3, test 2: the pause is the consumer's, so it holds on every replica:
// consumer info shows it with the 429's deadline, the other replica learns
// of it from the advisory, and neither sends a request for A until
// Retry-After has passed.
func TestPauseIsClusterWide(t *testing.T) {
	const retryAfter = 2 * time.Second
	const jobs = 6
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.Concurrency = 4 })
	e.provision(ta)
	reqs := watchRequests(e.sim)
	e.sim.Throttle("client_a", 1, retryAfter)

	nc2, err := e.srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc2.Close)
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := newRecHooks(), newRecHooks()
	// When each API request left a replica (after its gate): a request that
	// passed the gate just before the replica learned of the pause may still
	// reach the simulator just after; what must not happen is a request
	// leaving once every replica knows.
	sent := &sentLog{}
	hc := &http.Client{Transport: sentRecorder{next: e.hc.Transport, log: sent}, Timeout: e.hc.Timeout}
	cfg1 := e.config("r1", h1, ta)
	cfg2 := e.config("r2", h2, ta)
	cfg1.HTTPClient, cfg2.HTTPClient = hc, hc
	cfg2.Conn, cfg2.JS = nc2, js2
	e.start(cfg1)
	e.start(cfg2)
	for i := range jobs {
		e.publish("a", getJob(fmt.Sprintf("a%d", i), fmt.Sprintf("c%d", i)))
	}

	ar := reqs.waitFor(t, "a 429", 10*time.Second, "a", func(rs []platformtest.Request) bool {
		return count(rs, func(r platformtest.Request) bool { return r.Status == 429 }) > 0
	})
	_, limited := first429(t, ar)
	wantUntil := limited.At.Add(retryAfter)
	near := func(got time.Time) bool { return got.Sub(wantUntil).Abs() <= time.Second }

	// Both replicas know, whichever of them got the 429.
	var known time.Time
	for name, h := range map[string]*recHooks{"r1": h1, "r2": h2} {
		h.waitFor(t, name+" to learn of the pause", 5*time.Second, func(h *recHooks) bool {
			for _, p := range h.pauses["a"] {
				if near(p.until) {
					if p.at.After(known) {
						known = p.at
					}
					return true
				}
			}
			return false
		})
	}
	t.Logf("both replicas knew of the pause %s after the 429", known.Sub(limited.At).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := e.js.Consumer(ctx, e.names.JobsStream("a"), e.names.Consumer("a"))
	if err != nil {
		t.Fatal(err)
	}
	info := cons.CachedInfo()
	if !time.Now().Before(wantUntil) {
		t.Fatalf("consumer info read %s after the 429, after the pause ended: too slow to check it", time.Since(limited.At))
	}
	if !info.Paused || info.Config.PauseUntil == nil || !near(*info.Config.PauseUntil) {
		t.Errorf("consumer info: paused %v until %v, want paused until %s ±1s", info.Paused, info.Config.PauseUntil, wantUntil)
	}
	// The reason is recorded just after the consumer is paused.
	pauses, err := e.js.KeyValue(ctx, e.names.PausesBucket())
	if err != nil {
		t.Fatal(err)
	}
	w, err := pauses.Watch(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	for entry := range w.Updates() {
		if entry != nil {
			break
		}
	}
	_ = w.Stop()
	until, rec, err := dispatcher.PauseState(ctx, e.js, e.names, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !time.Now().Before(wantUntil) {
		t.Fatalf("pause state read %s after the 429, after the pause ended: too slow to check it", time.Since(limited.At))
	}
	if !near(until) || rec == nil || !strings.Contains(rec.Reason, "429 from platform, Retry-After 2s") || (rec.By != "r1" && rec.By != "r2") {
		t.Errorf("pause state: until %s, record %+v", until, rec)
	}

	for i := range jobs {
		e.waitStatus("a", fmt.Sprintf("a%d", i), dispatcher.StateSucceeded, 15*time.Second)
	}
	if got := h1.count("a", OutcomeSucceeded) + h2.count("a", OutcomeSucceeded); got != jobs {
		t.Errorf("%d successes over both replicas, want %d", got, jobs)
	}
	// A request that passed its gate an instant before the replica learned
	// of the pause is built and sent a few milliseconds later (measured up to
	// ~4 ms under -race on a loaded machine); the gate cannot be atomic with
	// the socket write. inFlight bounds that; the rest of the pause must see
	// no request at all.
	const inFlight = 50 * time.Millisecond
	for _, at := range sent.times() {
		if at.After(known.Add(inFlight)) && at.Before(wantUntil) {
			t.Errorf("request for a sent at +%s, while every replica had known for over %s that a was paused until +%s", at.Sub(limited.At), inFlight, retryAfter)
		}
	}
	if n := len(sent.times()); n < jobs+1 {
		t.Errorf("%d API requests recorded as sent, want at least %d (the recorder is not in the path)", n, jobs+1)
	}
	if n := count(reqs.of("a"), func(r platformtest.Request) bool { return r.Status == 200 }); n != jobs {
		t.Errorf("%d answers 200 for a, want %d", n, jobs)
	}
}

// Issue 3, test 3: 429s do not use up the attempt budget: a job throttled
// three times with a budget of two attempts still succeeds.
func TestRateLimitsDoNotUseUpAttempts(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.MaxAttempts = 2 })
	e.provision(ta)
	e.sim.Throttle("client_a", 3, time.Second)
	hooks := newRecHooks()
	e.start(e.config("r1", hooks, ta))
	e.publish("a", getJob("j1", "c1"))

	st := e.waitStatus("a", "j1", dispatcher.StateSucceeded, 15*time.Second)
	if st.Attempts != 1 || st.FreeDeliveries != 3 {
		t.Errorf("status: attempts %d, free deliveries %d; want 1 and 3", st.Attempts, st.FreeDeliveries)
	}
	stats := e.sim.Stats("client_a")
	if stats.RateLimited != 3 || stats.Succeeded != 1 {
		t.Errorf("simulator: %d 429s, %d successes; want 3 and 1", stats.RateLimited, stats.Succeeded)
	}
	if n := hooks.count("a", OutcomeDead); n != 0 {
		t.Errorf("%d dead", n)
	}
}

// Issue 3, test 4: a 5xx is retried with backoff and then succeeds; a
// persistent 5xx is dead-lettered after the budget, with why.
func TestServerErrorsRetryThenDeadLetter(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.MaxAttempts = 3; t.Concurrency = 1 })
	e.provision(ta)
	hooks := newRecHooks()
	cfg := e.config("r1", hooks, ta)
	e.start(cfg)

	e.sim.FailNext("client_a", 2, http.StatusServiceUnavailable)
	e.publish("a", getJob("flaky", "c-flaky"))
	st := e.waitStatus("a", "flaky", dispatcher.StateSucceeded, 10*time.Second)
	if st.Attempts != 3 || st.FreeDeliveries != 0 {
		t.Errorf("flaky: attempts %d, free %d; want 3, 0", st.Attempts, st.FreeDeliveries)
	}
	flaky := e.sim.Requests(platformtest.RequestFilter{ClientID: "client_a", PathPrefix: "/api/v2/outbound/campaigns/c-flaky"})
	if len(flaky) != 3 || flaky[0].Status != 503 || flaky[1].Status != 503 || flaky[2].Status != 200 {
		t.Fatalf("flaky requests: %+v", flaky)
	}
	for k := 1; k < len(flaky); k++ {
		// Full jitter: between 0 and the ceiling, plus the redelivery's own time.
		ceiling := backoffCeiling(k, cfg.BackoffBase, cfg.BackoffMax)
		if gap := flaky[k].At.Sub(flaky[k-1].At); gap > ceiling+time.Second {
			t.Errorf("retry %d came %s after the failure; backoff ceiling %s", k, gap, ceiling)
		}
	}

	e.sim.FailNext("client_a", 100, http.StatusInternalServerError)
	e.publish("a", getJob("broken", "c-broken"))
	st = e.waitStatus("a", "broken", dispatcher.StateDead, 10*time.Second)
	e.sim.FailNext("client_a", 0, http.StatusInternalServerError)
	if st.Attempts != 3 || st.HTTPStatus != 500 || !strings.HasPrefix(st.Error, ClassExhausted) {
		t.Errorf("broken: status %+v", st)
	}
	if n := len(e.sim.Requests(platformtest.RequestFilter{ClientID: "client_a", PathPrefix: "/api/v2/outbound/campaigns/c-broken"})); n != 3 {
		t.Errorf("broken: %d requests, want 3 (the budget)", n)
	}
	dl := e.deadLetter("a", "campaign.get")
	h := dl.Header
	for k, want := range map[string]string{
		dispatcher.HeaderErrorClass: ClassExhausted,
		dispatcher.HeaderAttempts:   "3",
		dispatcher.HeaderHTTPStatus: "500",
		dispatcher.HeaderJobID:      "broken",
		dispatcher.HeaderTenant:     "a",
		dispatcher.HeaderOp:         "campaign.get",
		dispatcher.HeaderSubject:    e.names.JobSubject("a", "campaign.get"),
	} {
		if got := h.Get(k); got != want {
			t.Errorf("dead letter header %s = %q, want %q", k, got, want)
		}
	}
	if msg := h.Get(dispatcher.HeaderError); !strings.Contains(msg, "attempt 3 of 3") || !strings.Contains(msg, "500") {
		t.Errorf("dead letter error %q", msg)
	}
	first, err1 := time.Parse(time.RFC3339Nano, h.Get(dispatcher.HeaderFirstAttempt))
	last, err2 := time.Parse(time.RFC3339Nano, h.Get(dispatcher.HeaderLastAttempt))
	if err1 != nil || err2 != nil || last.Before(first) {
		t.Errorf("attempt times %q, %q", h.Get(dispatcher.HeaderFirstAttempt), h.Get(dispatcher.HeaderLastAttempt))
	}
	if !strings.Contains(string(dl.Data), `"id":"broken"`) {
		t.Errorf("dead letter body is not the job: %s", dl.Data)
	}
	if got := hooks.count("a", OutcomeRetried); got != 4 {
		t.Errorf("retried outcomes %d, want 4 (2 flaky + 2 broken)", got)
	}
}

// Issue 3, test 5: a 401 drops the token; exactly one new token is fetched
// and the job succeeds on its first attempt. A 401 that persists with the
// new token parks the lane and hands the job back without using an attempt.
func TestUnauthorizedRefreshesTokenOnce(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.Concurrency = 1 })
	e.provision(ta)
	hooks := newRecHooks()
	p, _ := e.start(e.config("r1", hooks, ta))

	e.publish("a", getJob("j1", "c1"))
	e.waitStatus("a", "j1", dispatcher.StateSucceeded, 10*time.Second)
	if n := e.sim.Stats("client_a").TokensIssued; n != 1 {
		t.Fatalf("%d tokens issued, want 1", n)
	}

	e.sim.ExpireTokens("client_a")
	e.publish("a", getJob("j2", "c2"))
	st := e.waitStatus("a", "j2", dispatcher.StateSucceeded, 10*time.Second)
	stats := e.sim.Stats("client_a")
	if stats.TokensIssued != 2 || stats.Unauthorized != 1 {
		t.Errorf("after expiry: %d tokens issued, %d 401s; want 2 and 1", stats.TokensIssued, stats.Unauthorized)
	}
	if st.Attempts != 1 || st.FreeDeliveries != 0 {
		t.Errorf("j2: attempts %d, free %d; want 1, 0", st.Attempts, st.FreeDeliveries)
	}
	hooks.waitFor(t, "2 token fetches reported", time.Second, func(h *recHooks) bool { return h.tokens["a"] == 2 })

	// Rejected with the new token too: parked, handed back, then through.
	e.sim.FailNext("client_a", 2, http.StatusUnauthorized)
	e.publish("a", getJob("j3", "c3"))
	st = e.waitStatus("a", "j3", dispatcher.StateSucceeded, 10*time.Second)
	// Parked, the lane hands the job back at once and stops pulling; a
	// redelivery that reaches its iterator while it drains goes back too.
	handedBack := hooks.count("a", OutcomeHandedBack)
	if st.Attempts != 1 || st.FreeDeliveries != handedBack {
		t.Errorf("j3: attempts %d, free %d; want 1, %d (its hand-backs)", st.Attempts, st.FreeDeliveries, handedBack)
	}
	if handedBack < 1 || handedBack > 2 {
		t.Errorf("%d hand-backs, want 1 (2 if a redelivery met the draining iterator)", handedBack)
	}
	lane := p.Lanes()[0]
	if lane.State != dispatcher.LaneRunning || !strings.Contains(lane.LastError, dispatcher.LaneCredentialsRejected) {
		t.Errorf("lane after recovery: %+v", lane)
	}
	if strings.Contains(lane.LastError, "secret_a") {
		t.Errorf("lane error reveals the secret: %q", lane.LastError)
	}
}

// Issue 3, test 6: envelopes that can never run are dead-lettered as
// invalid with the reason, and the lane goes on with the next job.
func TestInvalidEnvelopesAreDeadLettered(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.Concurrency = 1 })
	e.provision(ta)
	get := e.names.JobSubject("a", "campaign.get")
	bad := []struct {
		name, subject, body, reason string
	}{
		{"bad JSON", get, `{"id":"x1","op":`, "malformed JSON"},
		{"unknown op", e.names.JobSubject("a", "campaign.explode"), `{"id":"x2","op":"campaign.explode"}`, `unknown op "campaign.explode"`},
		{"tenant mismatch", get, `{"id":"x3","tenant":"b","op":"campaign.get","params":{"campaign_id":"c1"}}`, `names tenant "b"`},
		{"oversize", get, `{"id":"x4","op":"campaign.get","params":{"campaign_id":"` + strings.Repeat("x", dispatcher.MaxJobBytes) + `"}}`, "larger than"},
		{"op mismatch", e.names.JobSubject("a", "campaign.start"), `{"id":"x5","op":"campaign.get","params":{"campaign_id":"c1"}}`, `published for op "campaign.start"`},
		{"bad params", get, `{"id":"x6","op":"campaign.get","params":{}}`, "params"},
		// A producer of a setting the message id of another tenant's job, which would
		// make that tenant's job a duplicate in their shared stream.
		{"foreign message id", get, `{"id":"x7","op":"campaign.get","params":{"campaign_id":"c1"}}`, `Nats-Msg-Id "b:x7" is scoped to tenant b`},
	}
	for i, b := range bad {
		id := "bad-" + strconv.Itoa(i)
		if b.name == "foreign message id" {
			id = dispatcher.MsgID("b", "x7")
		}
		e.publishRaw(b.subject, []byte(b.body), id)
	}
	e.publish("a", getJob("good", "c1"))
	hooks := newRecHooks()
	e.start(e.config("r1", hooks, ta))
	e.waitStatus("a", "good", dispatcher.StateSucceeded, 30*time.Second) // see the closing note of 2026-12-02: once >10 s under CI load, cause not found
	hooks.waitFor(t, "the invalid jobs to die", 5*time.Second, func(h *recHooks) bool { return h.finished["a"]["dead"] == len(bad) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, e.names.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	// In any order: the stray on a subject no consumer takes (unknown op)
	// is dead-lettered by the replica's sweep, the others by the lane.
	byBody := map[string]*jetstream.RawStreamMsg{}
	for i := range bad {
		m, err := s.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatalf("dead letter %d: %v", i+1, err)
		}
		byBody[string(m.Data)] = m
	}
	for _, b := range bad {
		m := byBody[b.body]
		if m == nil {
			t.Errorf("%s: no dead letter with its body", b.name)
			continue
		}
		if got := m.Header.Get(dispatcher.HeaderErrorClass); got != ClassInvalid {
			t.Errorf("%s: class %q", b.name, got)
		}
		if got := m.Header.Get(dispatcher.HeaderError); !strings.Contains(got, b.reason) {
			t.Errorf("%s: error %q, want it to mention %q", b.name, got, b.reason)
		}
		if got := m.Header.Get(dispatcher.HeaderSubject); got != b.subject {
			t.Errorf("%s: subject header %q, want %q", b.name, got, b.subject)
		}
	}
	if n := len(e.apiRequests("a")); n != 1 {
		t.Errorf("%d platform requests, want 1 (the valid job only)", n)
	}
}

// Issue 3, test 7: a job published twice with the same id within the
// duplicate window runs once.
func TestDuplicateJobRunsOnce(t *testing.T) {
	e := newEnv(t, platformtest.Config{}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.Concurrency = 1 })
	e.provision(ta)
	hooks := newRecHooks()
	e.start(e.config("r1", hooks, ta))

	job := getJob("dup", "c-dup")
	if ack := e.publish("a", job); ack.Duplicate {
		t.Fatal("first publish reported as duplicate")
	}
	if ack := e.publish("a", job); !ack.Duplicate {
		t.Error("second publish not reported as duplicate")
	}
	e.waitStatus("a", "dup", dispatcher.StateSucceeded, 10*time.Second)
	if ack := e.publish("a", job); !ack.Duplicate {
		t.Error("publish after completion, within the window, not reported as duplicate")
	}
	// A job queued after the duplicates runs after them (one at a time).
	e.publish("a", getJob("after", "c-after"))
	e.waitStatus("a", "after", dispatcher.StateSucceeded, 10*time.Second)
	if n := len(e.sim.Requests(platformtest.RequestFilter{ClientID: "client_a", PathPrefix: "/api/v2/outbound/campaigns/c-dup"})); n != 1 {
		t.Errorf("the duplicated job reached the platform %d times, want 1", n)
	}
	if n := hooks.count("a", OutcomeSucceeded); n != 2 {
		t.Errorf("%d successes, want 2", n)
	}
}

// Issue 3, test 8: stopping a replica with jobs in flight loses none. The
// first pool is stopped mid-way with a short ShutdownTimeout; its unfinished
// jobs are cancelled and handed back, and a second pool finishes them. The
// guarantee is at-least-once: every job ends succeeded, none is lost; a job
// whose answer raced the cancel may have reached the platform twice.
func TestShutdownLosesNoJob(t *testing.T) {
	const jobs = 16
	e := newEnv(t, platformtest.Config{Latency: 300 * time.Millisecond}, "a")
	ta := e.tenant("a", func(t *tenants.Tenant) { t.Concurrency = 4; t.RatePerMinute = 6000 })
	e.provision(ta)
	for i := range jobs {
		e.publish("a", getJob(fmt.Sprintf("j%02d", i), fmt.Sprintf("c%02d", i)))
	}
	h1 := newRecHooks()
	cfg1 := e.config("r1", h1, ta)
	cfg1.ShutdownTimeout = 100 * time.Millisecond
	p1, stop1 := e.start(cfg1)
	// Stop while a batch is in flight: the first batch is done and the next
	// one has started (it needs 300ms; the shutdown gives it 100ms).
	eventually(t, "a second batch in flight", 10*time.Second, func() bool {
		l := p1.Lanes()[0]
		return l.Succeeded >= 4 && l.InFlight >= 2
	})
	err, took := stop1()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("first pool: %d succeeded, %d handed back; stopped in %s", h1.count("a", OutcomeSucceeded), h1.count("a", OutcomeHandedBack), took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("shutdown took %s with a 100ms ShutdownTimeout", took)
	}
	if h1.count("a", OutcomeHandedBack) == 0 {
		t.Error("no job was handed back, though jobs were in flight at shutdown")
	}

	h2 := newRecHooks()
	e.start(e.config("r2", h2, ta))
	for i := range jobs {
		e.waitStatus("a", fmt.Sprintf("j%02d", i), dispatcher.StateSucceeded, 15*time.Second)
	}
	if got := h1.count("a", OutcomeSucceeded) + h2.count("a", OutcomeSucceeded); got < jobs {
		t.Errorf("%d successes for %d jobs", got, jobs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, e.names.JobsStream("a"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d jobs left in the queue", info.State.Msgs)
	}
	for i := range jobs {
		reqs := e.sim.Requests(platformtest.RequestFilter{ClientID: "client_a", PathPrefix: fmt.Sprintf("/api/v2/outbound/campaigns/c%02d", i), Status: 200})
		if len(reqs) == 0 {
			t.Errorf("job j%02d never got a 200 from the platform", i)
		}
	}
}
