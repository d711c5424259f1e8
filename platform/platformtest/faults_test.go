package platformtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestThrottle(t *testing.T) {
	h := newHarness(t, Config{Limit: 10, AutoCreate: true})
	tok := h.token("client_org1", "secret1")
	other := h.token("client_org2", "secret2")
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)

	h.srv.Throttle("client_org1", 2, 1500*time.Millisecond)
	for range 2 {
		// 1.5 s rounded up; the normalized body names the main limit.
		rateLimited(t, h.api("GET", campaignPath, tok, nil), 2, mainLimit(10))
		wantCounted(t, h, tok, 1) // injected: the window is untouched
	}
	wantStatus(t, h.api("GET", campaignPath, other, nil), http.StatusOK) // other clients unaffected
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	wantCounted(t, h, tok, 2)

	h.srv.Throttle("client_org1", 1, 30*time.Second)
	h.srv.Throttle("client_org1", 0, 0) // cancelled
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	if st := h.srv.Stats("client_org1"); st.RateLimited != 2 || st.Succeeded != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// Throttle names the main limit only when there is one, and not at all
// with OmitLimitInBody.
func TestThrottleLimitObject(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want *Limit
	}{
		{"limited", Config{Limit: 50, Window: 10 * time.Second}, mainLimit(300)},
		{"unlimited", Config{}, nil},
		{"omitted", Config{Limit: 50, OmitLimitInBody: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			tok := h.token("client_org1", "secret1")
			h.srv.Throttle("client_org1", 1, 0)
			rateLimited(t, h.api("GET", campaignPath, tok, nil), 0, tc.want)
		})
	}
}

func TestFailNext(t *testing.T) {
	h := newHarness(t, Config{Limit: 10, AutoCreate: true})
	tok := h.token("client_org1", "secret1")
	h.srv.FailNext("client_org1", 2, http.StatusBadGateway)
	for range 2 {
		r := h.api("POST", "/api/v2/outbound/campaigns/c1/start", tok, nil)
		wantStatus(t, r, http.StatusBadGateway)
		today(t, r)
		if e := r.apiErr(t); e.Code != "bad.gateway" {
			t.Fatalf("code %q", e.Code)
		}
	}
	if c, _ := h.srv.Campaign("org_1", "c1"); c.CampaignStatus == CampaignOn {
		t.Fatal("a failed start changed the campaign")
	}
	wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/c1/start", tok, nil), http.StatusNoContent)

	// 429 without Retry-After, with the older code, uncounted.
	h.srv.FailNext("client_org1", 1, http.StatusTooManyRequests)
	r := h.api("GET", campaignPath, tok, nil)
	wantStatus(t, r, http.StatusTooManyRequests)
	if ra := r.header.Get("Retry-After"); ra != "" {
		t.Fatalf("FailNext 429 has Retry-After %q", ra)
	}
	if e := r.apiErr(t); e.Code != "too.many.requests" || e.Limit != nil {
		t.Fatalf("FailNext 429 body %s", r.body)
	}
	wantCounted(t, h, tok, 1)

	// Throttle takes precedence over FailNext; both are used up in turn.
	h.srv.FailNext("client_org1", 1, http.StatusInternalServerError)
	h.srv.Throttle("client_org1", 1, time.Second)
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusTooManyRequests)
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusInternalServerError)
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)

	st := h.srv.Stats("client_org1")
	if st.Requests != 7 || st.Failed != 3 || st.RateLimited != 2 || st.Succeeded != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFailNextRetryAfter(t *testing.T) {
	h := newHarness(t, Config{Limit: 10, AutoCreate: true})
	tok := h.token("client_org1", "secret1")
	for _, tc := range []struct {
		status     int
		retryAfter time.Duration
		want       int
	}{
		{http.StatusServiceUnavailable, 30 * time.Second, 30},
		{http.StatusServiceUnavailable, 1100 * time.Millisecond, 2},
		{http.StatusTooManyRequests, 0, 0},
		{http.StatusBadGateway, -time.Second, 0},
	} {
		h.srv.FailNextRetryAfter("client_org1", 2, tc.status, tc.retryAfter)
		for range 2 {
			r := h.api("GET", campaignPath, tok, nil)
			wantStatus(t, r, tc.status)
			today(t, r)
			if got := headerInt(t, r, "Retry-After"); got != tc.want {
				t.Fatalf("%d after %s: Retry-After %d, want %d", tc.status, tc.retryAfter, got, tc.want)
			}
			if e := r.apiErr(t); e.Code != codeFor(tc.status) {
				t.Fatalf("code %q", e.Code)
			}
		}
		wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	}
	wantCounted(t, h, tok, 4)

	// A plain FailNext replaces it, without Retry-After.
	h.srv.FailNextRetryAfter("client_org1", 5, http.StatusServiceUnavailable, time.Minute)
	h.srv.FailNext("client_org1", 1, http.StatusServiceUnavailable)
	if r := h.api("GET", campaignPath, tok, nil); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "" {
		t.Fatalf("FailNext after FailNextRetryAfter: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
}

func TestThrottleTokens(t *testing.T) {
	h := newHarness(t, Config{Limit: 10, AutoCreate: true})
	h.srv.ThrottleTokens("client_org1", 2, 2500*time.Millisecond)
	for _, secret := range []string{"secret1", "wrong"} { // before the secret is checked
		rateLimited(t, h.tokenRequest("client_org1", secret, clientCredentials), 3, nil)
	}
	h.token("client_org2", "secret2") // other clients unaffected
	tok := h.token("client_org1", "secret1")
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)

	h.srv.ThrottleTokens("client_org1", 1, time.Minute)
	h.srv.ThrottleTokens("client_org1", 0, 0) // cancelled
	h.token("client_org1", "secret1")

	// API requests are not affected by ThrottleTokens, token requests not by Throttle.
	h.srv.Throttle("client_org1", 1, time.Second)
	h.token("client_org1", "secret1")
	if st := h.srv.Stats("client_org1"); st.TokensIssued != 3 || st.TokenErrors != 2 || st.RateLimited != 0 {
		t.Fatalf("stats %+v", st)
	}
	reqs := h.srv.Requests(RequestFilter{PathPrefix: tokenPath, Status: 429})
	if len(reqs) != 2 || reqs[0].ClientID != "client_org1" || reqs[0].CorrelationID == "" {
		t.Fatalf("recorded %+v", reqs)
	}
}

func TestFaultOnUnknownClientPanics(t *testing.T) {
	h := newHarness(t, Config{})
	for name, f := range map[string]func(){
		"Throttle":     func() { h.srv.Throttle("nobody", 1, time.Second) },
		"FailNext":     func() { h.srv.FailNext("nobody", 1, 500) },
		"FailNextRA":   func() { h.srv.FailNextRetryAfter("nobody", 1, 503, time.Second) },
		"Tokens":       func() { h.srv.ThrottleTokens("nobody", 1, time.Second) },
		"bad status2":  func() { h.srv.FailNextRetryAfter("client_org1", 1, 600, time.Second) },
		"ExpireTokens": func() { h.srv.ExpireTokens("nobody") },
		"bad status":   func() { h.srv.FailNext("client_org1", 1, 42) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// errorRun sends n requests and returns which were answered 503.
func errorRun(t *testing.T, seed int64, ratio float64, n int) []bool {
	t.Helper()
	h := newHarness(t, Config{Limit: 1000, AutoCreate: true, ErrorRatio: ratio, Seed: seed})
	tok := h.token("client_org1", "secret1")
	out := make([]bool, n)
	for i := range out {
		r := h.api("GET", campaignPath, tok, nil)
		switch r.status {
		case http.StatusServiceUnavailable:
			if e := r.apiErr(t); e.Code != "service.unavailable" {
				t.Fatalf("code %q", e.Code)
			}
			out[i] = true
		case http.StatusOK:
		default:
			t.Fatalf("status %d", r.status)
		}
	}
	// 503s do not use up the window.
	ok := 0
	for _, failed := range out {
		if !failed {
			ok++
		}
	}
	wantCounted(t, h, tok, ok)
	return out
}

func TestErrorRatio(t *testing.T) {
	const n = 400
	a, b, c := errorRun(t, 42, 0.25, n), errorRun(t, 42, 0.25, n), errorRun(t, 43, 0.25, n)
	count := func(xs []bool) int {
		k := 0
		for _, x := range xs {
			if x {
				k++
			}
		}
		return k
	}
	same, differ := true, false
	for i := range a {
		same = same && a[i] == b[i]
		differ = differ || a[i] != c[i]
	}
	if !same {
		t.Fatal("the same seed gave a different sequence of 503s")
	}
	if !differ {
		t.Fatal("another seed gave the same sequence of 503s")
	}
	// 0.25 of 400: 100 expected; ±40 is beyond 4 standard deviations.
	if k := count(a); k < 60 || k > 140 {
		t.Fatalf("%d of %d requests answered 503 at ratio 0.25", k, n)
	}
	if k := count(errorRun(t, 1, 0, 50)); k != 0 {
		t.Fatalf("%d 503s at ratio 0", k)
	}
	if k := count(errorRun(t, 1, 1, 50)); k != 50 {
		t.Fatalf("%d of 50 503s at ratio 1", k)
	}
}

func TestLatency(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true, Latency: 30 * time.Millisecond})
	tok := h.token("client_org1", "secret1")
	start := time.Now()
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("answered after %s with 30ms latency", el)
	}
	// Token requests get no latency: the bound is far below the latency set.
	h.srv.SetLatency(time.Hour)
	h.token("client_org1", "secret1")
}

// handlerToken issues a token by calling the handler directly.
func handlerToken(t *testing.T, sim *Simulator, id, secret string) string {
	t.Helper()
	req := httptest.NewRequest("POST", tokenPath, strings.NewReader("grant_type=client_credentials"))
	req.SetBasicAuth(id, secret)
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	var tr tokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil || rec.Code != 200 {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	return tr.AccessToken
}

// Inside a synctest bubble the latency timer runs on fake time: the answer
// comes exactly Latency after the request, and a caller that gives up ends
// the wait at once (recorded with status 0).
func TestLatencyInSynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := New(Config{Clients: devClients, AutoCreate: true, Latency: 250 * time.Millisecond})
		tok := handlerToken(t, sim, "client_org1", "secret1")
		serve := func(ctx context.Context) (*httptest.ResponseRecorder, time.Duration) {
			req := httptest.NewRequestWithContext(ctx, "GET", campaignPath, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			start := time.Now()
			sim.ServeHTTP(rec, req)
			return rec, time.Since(start)
		}

		rec, took := serve(context.Background())
		if rec.Code != 200 || took != 250*time.Millisecond {
			t.Fatalf("answered %d after %s, want 200 after 250ms", rec.Code, took)
		}

		sim.SetLatency(time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan time.Duration)
		go func() {
			rec, took := serve(ctx)
			if rec.Body.Len() != 0 {
				t.Errorf("an answer was written for a caller that went away: %s", rec.Body)
			}
			done <- took
		}()
		synctest.Wait() // the handler is waiting out the latency
		cancel()
		if took := <-done; took != 0 {
			t.Fatalf("the handler waited %s after the caller went away", took)
		}
		reqs := sim.Requests(RequestFilter{PathPrefix: "/api/"})
		if len(reqs) != 2 || reqs[1].Status != 0 || reqs[1].ClientID != "client_org1" {
			t.Fatalf("recorded %+v", reqs)
		}
		if st := sim.Stats("client_org1"); st.Failed != 1 || st.Succeeded != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}
