package platformtest

import (
	"net/http"
	"testing"
	"time"
)

const campaignPath = "/api/v2/outbound/campaigns/c1"

// window checks the inin-ratelimit-* headers of r.
func window(t *testing.T, r response, allowed, count, reset int) {
	t.Helper()
	a, c, s := headerInt(t, r, "inin-ratelimit-allowed"), headerInt(t, r, "inin-ratelimit-count"), headerInt(t, r, "inin-ratelimit-reset")
	if a != allowed || c != count || s != reset {
		t.Fatalf("inin-ratelimit allowed/count/reset = %d/%d/%d, want %d/%d/%d", a, c, s, allowed, count, reset)
	}
}

func TestWindow(t *testing.T) {
	h := newHarness(t, Config{Limit: 3, Window: 60 * time.Second, AutoCreate: true})
	tok := h.token("client_org1", "secret1")

	r := h.api("GET", campaignPath, tok, nil)
	wantStatus(t, r, http.StatusOK)
	window(t, r, 3, 1, 60)
	if r.header.Get("Retry-After") != "" {
		t.Error("a 200 carries Retry-After")
	}

	h.clock.Advance(1500 * time.Millisecond) // 58.5 s left: reset rounds up
	window(t, h.api("GET", campaignPath, tok, nil), 3, 2, 59)
	h.clock.Advance(500 * time.Millisecond)
	window(t, h.api("GET", campaignPath, tok, nil), 3, 3, 58)

	h.clock.Advance(17*time.Second + 250*time.Millisecond) // 40.75 s left
	r = h.api("GET", campaignPath, tok, nil)
	wantStatus(t, r, http.StatusTooManyRequests)
	if got := headerInt(t, r, "Retry-After"); got != 41 {
		t.Fatalf("Retry-After %d, want 41", got)
	}
	window(t, r, 3, 3, 41)
	e := r.apiErr(t)
	if e.Code != "too.many.requests" || e.Message != "Rate limit exceeded the maximum [3] requests within [60] seconds" {
		t.Fatalf("429 body %+v", e)
	}

	// A refused request does not use up budget: still 3 counted.
	window(t, h.api("GET", campaignPath, tok, nil), 3, 3, 41)

	// Just before the reset: still limited, Retry-After at least 1.
	h.clock.Advance(40*time.Second + 700*time.Millisecond)
	r = h.api("GET", campaignPath, tok, nil)
	wantStatus(t, r, http.StatusTooManyRequests)
	if got := headerInt(t, r, "Retry-After"); got != 1 {
		t.Fatalf("Retry-After %d just before reset, want 1", got)
	}

	// At the reset a new window opens with this request.
	h.clock.Advance(50 * time.Millisecond)
	r = h.api("GET", campaignPath, tok, nil)
	wantStatus(t, r, http.StatusOK)
	window(t, r, 3, 1, 60)

	st := h.srv.Stats("client_org1")
	if st.Requests != 7 || st.Succeeded != 4 || st.RateLimited != 3 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(h.srv.Requests(RequestFilter{Status: 429})); n != 3 {
		t.Fatalf("%d recorded 429s, want 3", n)
	}
}

// The 404 and 400 answers of admitted requests count as well.
func TestWindowCountsErrorsAfterAdmission(t *testing.T) {
	h := newHarness(t, Config{Limit: 2})
	tok := h.token("client_org1", "secret1")
	window(t, h.api("GET", "/api/v2/outbound/campaigns/nope", tok, nil), 2, 1, 60)
	window(t, h.api("GET", "/api/v2/no/such/path", tok, nil), 2, 2, 60)
	wantStatus(t, h.api("GET", "/api/v2/outbound/campaigns/nope", tok, nil), http.StatusTooManyRequests)
}

func TestUnlimitedSendsNoHeaders(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true})
	tok := h.token("client_org1", "secret1")
	for range 50 {
		r := h.api("GET", campaignPath, tok, nil)
		wantStatus(t, r, http.StatusOK)
		if r.header.Get("inin-ratelimit-allowed") != "" {
			t.Fatalf("unlimited answer has rate-limit headers %v", r.header)
		}
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
		r := h.api("GET", campaignPath, quiet, nil)
		wantStatus(t, r, http.StatusOK)
		window(t, r, 5, i+1, 60)
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
	window(t, h.api("GET", campaignPath, busy, nil), 5, 1, 60)
	for range 4 {
		wantStatus(t, h.api("GET", campaignPath, busy, nil), http.StatusOK)
	}
	h.clock.Advance(30 * time.Second)
	r := h.api("GET", campaignPath, quiet, nil)
	wantStatus(t, r, http.StatusTooManyRequests)
	if got := headerInt(t, r, "Retry-After"); got != 30 {
		t.Fatalf("quiet org's Retry-After %d, want 30", got)
	}
	window(t, r, 5, 5, 30)
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
	// A higher limit applies to the open window at once.
	h.srv.SetLimit(4, 0)
	window(t, h.api("GET", campaignPath, tok, nil), 4, 3, 60)
	// A new window length applies from the next window on.
	h.srv.SetLimit(4, 10*time.Second)
	h.clock.Advance(60 * time.Second)
	window(t, h.api("GET", campaignPath, tok, nil), 4, 1, 10)
	window(t, h.api("GET", campaignPath, tok, nil), 4, 2, 10)
	h.srv.SetLimit(0, 0)
	if r := h.api("GET", campaignPath, tok, nil); r.header.Get("inin-ratelimit-allowed") != "" {
		t.Fatal("unlimited after SetLimit(0) still sends rate-limit headers")
	}
}
