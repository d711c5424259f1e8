package platformtest

import (
	"net/http"
	"testing"
	"time"
)

const campaignPath = "/api/v2/outbound/campaigns/c1"

// window checks the legacy inin-ratelimit-* headers of r.
func window(t *testing.T, r response, allowed, count, reset int) {
	t.Helper()
	a, c, s := headerInt(t, r, "inin-ratelimit-allowed"), headerInt(t, r, "inin-ratelimit-count"), headerInt(t, r, "inin-ratelimit-reset")
	if a != allowed || c != count || s != reset {
		t.Fatalf("inin-ratelimit allowed/count/reset = %d/%d/%d, want %d/%d/%d", a, c, s, allowed, count, reset)
	}
}

// wantCounted fails unless tok's main window has admitted want requests.
func wantCounted(t *testing.T, h *harness, tok string, want int) {
	t.Helper()
	if got := h.counted(tok); got != want {
		t.Fatalf("window counted %d requests, want %d", got, want)
	}
}

// By default (today's platform): no inin-ratelimit-* headers, a
// correlation id on every answer, and the normalized 429 naming the limit
// per minute.
func TestWindow(t *testing.T) {
	h := newHarness(t, Config{Limit: 3, Window: 60 * time.Second, AutoCreate: true})
	tok := h.token("client_org1", "secret1")

	r := h.api("GET", campaignPath, tok, nil)
	wantStatus(t, r, http.StatusOK)
	today(t, r)
	if r.header.Get("Retry-After") != "" {
		t.Error("a 200 carries Retry-After")
	}
	h.clock.Advance(2 * time.Second)
	today(t, h.api("GET", campaignPath, tok, nil))
	today(t, h.api("GET", campaignPath, tok, nil))
	wantCounted(t, h, tok, 3)

	h.clock.Advance(17*time.Second + 250*time.Millisecond) // 40.75 s left
	r = h.api("GET", campaignPath, tok, nil)
	rateLimited(t, r, 41, mainLimit(3))

	// A refused request does not use up budget: still 3 counted.
	wantCounted(t, h, tok, 3)

	// Just before the reset: still limited, Retry-After at least 1.
	h.clock.Advance(40*time.Second + 700*time.Millisecond)
	rateLimited(t, h.api("GET", campaignPath, tok, nil), 1, mainLimit(3))

	// At the reset a new window opens with this request.
	h.clock.Advance(50 * time.Millisecond)
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	wantCounted(t, h, tok, 1)

	st := h.srv.Stats("client_org1")
	if st.Requests != 6 || st.Succeeded != 4 || st.RateLimited != 2 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(h.srv.Requests(RequestFilter{Status: 429})); n != 2 {
		t.Fatalf("%d recorded 429s, want 2", n)
	}
}

// The limit value is per minute whatever the window: round(Limit × 60 s /
// Window); OmitLimitInBody drops the object.
func TestLimitValuePerMinute(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		window time.Duration
		omit   bool
		want   *Limit
	}{
		{"300 per minute", 300, time.Minute, false, mainLimit(300)},
		{"compressed 50 per 10s", 50, 10 * time.Second, false, mainLimit(300)},
		{"8.57 rounds up", 1, 7 * time.Second, false, mainLimit(9)},
		{"5.45 rounds down", 1, 11 * time.Second, false, mainLimit(5)},
		{"2 per 2 minutes", 2, 2 * time.Minute, false, mainLimit(1)},
		{"omitted", 1, time.Minute, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{Limit: tc.limit, Window: tc.window, OmitLimitInBody: tc.omit, AutoCreate: true})
			tok := h.token("client_org1", "secret1")
			exhaust(t, h, tok, tc.limit)
			rateLimited(t, h.api("GET", campaignPath, tok, nil), ceilSeconds(tc.window), tc.want)
		})
	}
}

// LegacyRateLimitHeaders brings back the inin-ratelimit-* headers as the
// platform sent them before 2021; the 429 body stays normalized.
func TestLegacyRateLimitHeaders(t *testing.T) {
	h := newHarness(t, Config{Limit: 3, Window: 60 * time.Second, AutoCreate: true, LegacyRateLimitHeaders: true})
	tok := h.token("client_org1", "secret1")

	r := h.api("GET", campaignPath, tok, nil)
	wantStatus(t, r, http.StatusOK)
	window(t, r, 3, 1, 60)

	h.clock.Advance(1500 * time.Millisecond) // 58.5 s left: reset rounds up
	window(t, h.api("GET", campaignPath, tok, nil), 3, 2, 59)
	h.clock.Advance(500 * time.Millisecond)
	window(t, h.api("GET", campaignPath, tok, nil), 3, 3, 58)

	h.clock.Advance(17*time.Second + 250*time.Millisecond) // 40.75 s left
	r = h.api("GET", campaignPath, tok, nil)
	window(t, r, 3, 3, 41)
	if got := headerInt(t, r, "Retry-After"); got != 41 {
		t.Fatalf("Retry-After %d, want 41", got)
	}
	if e := r.apiErr(t); e.Code != "too.many.requests.retry.after" || e.Limit == nil || *e.Limit != *mainLimit(3) {
		t.Fatalf("429 body %s", r.body)
	}
	window(t, h.api("GET", campaignPath, tok, nil), 3, 3, 41)

	// Injected answers carry the window too, untouched.
	h.srv.Throttle("client_org1", 1, time.Second)
	window(t, h.api("GET", campaignPath, tok, nil), 3, 3, 41)
	h.srv.FailNext("client_org1", 1, http.StatusBadGateway)
	window(t, h.api("GET", campaignPath, tok, nil), 3, 3, 41)

	// 401s carry none.
	if r := h.api("GET", campaignPath, "nope", nil); r.header.Get("inin-ratelimit-allowed") != "" {
		t.Fatalf("401 with rate-limit headers %v", r.header)
	}

	h.clock.Advance(41 * time.Second)
	window(t, h.api("GET", campaignPath, tok, nil), 3, 1, 60)

	// A higher limit applies to the open window at once; a new window
	// length from the next window on; unlimited sends no headers.
	h.srv.SetLimit(4, 0)
	window(t, h.api("GET", campaignPath, tok, nil), 4, 2, 60)
	h.srv.SetLimit(4, 10*time.Second)
	h.clock.Advance(60 * time.Second)
	window(t, h.api("GET", campaignPath, tok, nil), 4, 1, 10)
	h.srv.SetLimit(0, 0)
	if r := h.api("GET", campaignPath, tok, nil); r.header.Get("inin-ratelimit-allowed") != "" {
		t.Fatal("unlimited after SetLimit(0) still sends rate-limit headers")
	}
}

// The 404 and 400 answers of admitted requests count as well.
func TestWindowCountsErrorsAfterAdmission(t *testing.T) {
	h := newHarness(t, Config{Limit: 2})
	tok := h.token("client_org1", "secret1")
	wantStatus(t, h.api("GET", "/api/v2/outbound/campaigns/nope", tok, nil), http.StatusNotFound)
	wantCounted(t, h, tok, 1)
	wantStatus(t, h.api("GET", "/api/v2/no/such/path", tok, nil), http.StatusNotFound)
	wantCounted(t, h, tok, 2)
	wantStatus(t, h.api("GET", "/api/v2/outbound/campaigns/nope", tok, nil), http.StatusTooManyRequests)
}

// Unlimited, not even LegacyRateLimitHeaders sends the legacy headers.
func TestUnlimitedSendsNoHeaders(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true, LegacyRateLimitHeaders: true})
	tok := h.token("client_org1", "secret1")
	for range 50 {
		r := h.api("GET", campaignPath, tok, nil)
		wantStatus(t, r, http.StatusOK)
		today(t, r)
	}
}

// exhaust spends tok's whole window and checks the next request is a 429.
func exhaust(t *testing.T, h *harness, tok string, limit int) {
	t.Helper()
	for i := range limit {
		r := h.api("GET", campaignPath, tok, nil)
		if r.status != http.StatusOK {
			t.Fatalf("request %d of %d: %d %s", i+1, limit, r.status, r.body)
		}
	}
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusTooManyRequests)
}

func TestScopes(t *testing.T) {
	clients := []ClientCred{
		{ID: "a1", Secret: "s", Org: "org_a"},
		{ID: "a2", Secret: "s", Org: "org_a"},
		{ID: "b1", Secret: "s", Org: "org_b"},
	}
	cases := []struct {
		scope string
		// after exhausting a1's first token, is each of these limited?
		sameClientToken, sameOrgClient, otherOrg bool
	}{
		{ScopeToken, false, false, false},
		{ScopeClient, true, false, false},
		{ScopeOrg, true, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.scope, func(t *testing.T) {
			h := newHarness(t, Config{Clients: clients, Limit: 4, Scope: tc.scope, AutoCreate: true})
			first := h.token("a1", "s")
			exhaust(t, h, first, 4)
			for _, probe := range []struct {
				name    string
				tok     string
				limited bool
			}{
				{"a1's second token", h.token("a1", "s"), tc.sameClientToken},
				{"a2 (same org)", h.token("a2", "s"), tc.sameOrgClient},
				{"b1 (other org)", h.token("b1", "s"), tc.otherOrg},
			} {
				r := h.api("GET", campaignPath, probe.tok, nil)
				if limited := r.status == http.StatusTooManyRequests; limited != probe.limited {
					t.Errorf("%s: status %d, limited = %v, want %v", probe.name, r.status, limited, probe.limited)
				}
			}
		})
	}
}

// Two orgs with their own clients do not affect each other: the fix.
func TestSeparateClientsAreIsolated(t *testing.T) {
	h := newHarness(t, Config{Limit: 5, AutoCreate: true})
	busy := h.token("client_org1", "secret1")
	quiet := h.token("client_org2", "secret2")
	exhaust(t, h, busy, 5)
	for range 3 {
		wantStatus(t, h.api("GET", campaignPath, busy, nil), http.StatusTooManyRequests)
	}
	for i := range 5 {
		wantStatus(t, h.api("GET", campaignPath, quiet, nil), http.StatusOK)
		wantCounted(t, h, quiet, i+1)
	}
	if st := h.srv.Stats("client_org2"); st.RateLimited != 0 || st.Succeeded != 5 {
		t.Fatalf("quiet client stats %+v", st)
	}
}

// SharedBuckets reproduces the original report: one busy org's traffic
// uses up the budget that the other org's client shares, and the quiet org
// is refused with Retry-After although it sent nothing before.
func TestSharedBucketStarvesOtherOrg(t *testing.T) {
	h := newHarness(t, Config{
		Limit:         5,
		SharedBuckets: map[string]string{"client_org1": "appfoundry", "client_org2": "appfoundry"},
		AutoCreate:    true,
	})
	busy := h.token("client_org1", "secret1")
	quiet := h.token("client_org2", "secret2")
	h.clock.Advance(10 * time.Second)
	for range 5 {
		wantStatus(t, h.api("GET", campaignPath, busy, nil), http.StatusOK)
	}
	h.clock.Advance(30 * time.Second)
	rateLimited(t, h.api("GET", campaignPath, quiet, nil), 30, mainLimit(5))
	wantCounted(t, h, quiet, 5)
	if st := h.srv.Stats("client_org2"); st.RateLimited != 1 || st.Succeeded != 0 {
		t.Fatalf("quiet client stats %+v", st)
	}
	// A client outside the shared bucket is unaffected.
	h.srv.AddClient(ClientCred{ID: "client_org3", Secret: "secret3", Org: "org_3"})
	wantStatus(t, h.api("GET", campaignPath, h.token("client_org3", "secret3"), nil), http.StatusOK)
}

func TestSetLimit(t *testing.T) {
	h := newHarness(t, Config{Limit: 2, AutoCreate: true})
	tok := h.token("client_org1", "secret1")
	exhaust(t, h, tok, 2)
	// A higher limit applies to the open window at once, and 429s name it.
	h.srv.SetLimit(4, 0)
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	rateLimited(t, h.api("GET", campaignPath, tok, nil), 60, mainLimit(4))
	// A new window length applies from the next window on.
	h.srv.SetLimit(4, 10*time.Second)
	h.clock.Advance(60 * time.Second)
	exhaust(t, h, tok, 4)
	rateLimited(t, h.api("GET", campaignPath, tok, nil), 10, mainLimit(24))
	h.srv.SetLimit(0, 0)
	for range 10 {
		wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	}
}
