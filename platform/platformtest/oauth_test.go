package platformtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestTokenIssued(t *testing.T) {
	h := newHarness(t, Config{TokenTTL: 90 * time.Minute})
	r := h.tokenRequest("client_org1", "secret1", clientCredentials)
	wantStatus(t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var tr tokenResponse
	r.json(t, &tr)
	if tr.TokenType != "bearer" || tr.ExpiresIn != 5400 || len(tr.AccessToken) < 32 {
		t.Fatalf("token response %+v", tr)
	}
	if tr2 := h.token("client_org1", "secret1"); tr2 == tr.AccessToken {
		t.Fatal("two token requests got the same token")
	}
	if got := h.srv.Stats("client_org1"); got.TokensIssued != 2 || got.TokenErrors != 0 {
		t.Fatalf("stats %+v", got)
	}
	reqs := h.srv.Requests(RequestFilter{PathPrefix: "/oauth/token"})
	if len(reqs) != 2 || reqs[0].ClientID != "client_org1" || reqs[0].Org != "org_1" || reqs[0].Token != "" || reqs[0].Status != 200 {
		t.Fatalf("recorded token requests %+v", reqs)
	}
}

func TestTokenExpiresInRoundsUp(t *testing.T) {
	h := newHarness(t, Config{TokenTTL: 1500 * time.Millisecond})
	var tr tokenResponse
	h.tokenRequest("client_org1", "secret1", clientCredentials).json(t, &tr)
	if tr.ExpiresIn != 2 {
		t.Fatalf("expires_in %d, want 2", tr.ExpiresIn)
	}
}

func TestTokenErrors(t *testing.T) {
	cases := []struct {
		name       string
		id, secret string
		form       url.Values
		status     int
		code       string
		stats      string // client whose TokenErrors must be 1
	}{
		{"wrong secret", "client_org1", "nope", clientCredentials, 401, "invalid_client", "client_org1"},
		{"unknown client", "client_x", "secret1", clientCredentials, 401, "invalid_client", ""},
		{"no credentials", "", "", clientCredentials, 401, "invalid_client", ""},
		{"credentials in form", "", "", url.Values{"grant_type": {"client_credentials"},
			"client_id": {"client_org1"}, "client_secret": {"secret1"}}, 401, "invalid_client", ""},
		{"missing grant", "client_org1", "secret1", url.Values{}, 400, "invalid_request", "client_org1"},
		{"password grant", "client_org1", "secret1", url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type", "client_org1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			r := h.tokenRequest(tc.id, tc.secret, tc.form)
			wantStatus(t, r, tc.status)
			var te map[string]string
			r.json(t, &te)
			if te["error"] != tc.code || te["description"] == "" || te["error_description"] != te["description"] {
				t.Fatalf("token error body %s, want error %q with description = error_description", r.body, tc.code)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if strings.Contains(string(r.body), "secret1") {
				t.Fatalf("error body echoes the secret: %s", r.body)
			}
			if tc.stats != "" {
				if got := h.srv.Stats(tc.stats); got.TokenErrors != 1 || got.TokensIssued != 0 {
					t.Fatalf("stats %+v", got)
				}
			}
		})
	}
}

func TestTokenEndpointMethod(t *testing.T) {
	h := newHarness(t, Config{})
	req, _ := http.NewRequest(http.MethodGet, h.srv.TokenURL(), nil)
	r := h.send(req)
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
}

func TestTokenOutage(t *testing.T) {
	h := newHarness(t, Config{})
	old := h.token("client_org1", "secret1")
	h.srv.SetTokenOutage(true)
	r := h.tokenRequest("client_org1", "secret1", clientCredentials)
	wantStatus(t, r, http.StatusServiceUnavailable)
	var te tokenError
	r.json(t, &te)
	if te.Error != "temporarily_unavailable" {
		t.Fatalf("outage body %s", r.body)
	}
	// Tokens already issued keep working during the outage.
	wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/c1/start", old, nil), http.StatusNotFound)
	h.srv.SetTokenOutage(false)
	h.token("client_org1", "secret1")
	if got := h.srv.Stats("client_org1"); got.TokensIssued != 2 || got.TokenErrors != 1 {
		t.Fatalf("stats %+v", got)
	}
}

func TestAPIAuthentication(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true})
	const path = "/api/v2/outbound/campaigns/c1"

	r := h.api("GET", path, "", nil)
	wantStatus(t, r, http.StatusUnauthorized)
	if e := r.apiErr(t); e.Code != "authentication.required" {
		t.Fatalf("missing token: code %q", e.Code)
	}
	r = h.api("GET", path, "not-a-token", nil)
	wantStatus(t, r, http.StatusUnauthorized)
	if e := r.apiErr(t); e.Code != "bad.credentials" || e.Message != "Invalid login credentials." {
		t.Fatalf("unknown token: %+v", e)
	}
	req, _ := http.NewRequest("GET", h.srv.URL+path, nil)
	req.SetBasicAuth("client_org1", "secret1")
	wantStatus(t, h.send(req), http.StatusUnauthorized)

	tok := h.token("client_org1", "secret1")
	wantStatus(t, h.api("GET", path, tok, nil), http.StatusOK)
}

func TestTokenExpiry(t *testing.T) {
	h := newHarness(t, Config{TokenTTL: time.Hour, AutoCreate: true, Limit: 10})
	const path = "/api/v2/outbound/campaigns/c1"
	tok := h.token("client_org1", "secret1")
	h.clock.Advance(time.Hour - time.Nanosecond)
	wantStatus(t, h.api("GET", path, tok, nil), http.StatusOK)

	h.clock.Advance(time.Nanosecond)
	r := h.api("GET", path, tok, nil)
	wantStatus(t, r, http.StatusUnauthorized)
	if e := r.apiErr(t); e.Code != "bad.credentials" {
		t.Fatalf("expired token: code %q", e.Code)
	}
	if r.header.Get("inin-ratelimit-allowed") != "" {
		t.Error("a 401 carries rate-limit headers")
	}
	fresh := h.token("client_org1", "secret1")
	wantStatus(t, h.api("GET", path, fresh, nil), http.StatusOK)
	// The expired token stays refused after it was pruned by the new issue.
	wantStatus(t, h.api("GET", path, tok, nil), http.StatusUnauthorized)

	got := h.srv.Stats("client_org1")
	if got.Unauthorized != 1 || got.Succeeded != 2 || got.Requests != 3 {
		// The request after pruning no longer maps to the client.
		t.Fatalf("stats %+v", got)
	}
}

func TestExpireTokens(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true})
	const path = "/api/v2/outbound/campaigns/c1"
	t1 := h.token("client_org1", "secret1")
	t2 := h.token("client_org1", "secret1")
	other := h.token("client_org2", "secret2")
	h.srv.ExpireTokens("client_org1")
	for _, tok := range []string{t1, t2} {
		r := h.api("GET", path, tok, nil)
		wantStatus(t, r, http.StatusUnauthorized)
		if e := r.apiErr(t); e.Code != "bad.credentials" {
			t.Fatalf("code %q", e.Code)
		}
	}
	wantStatus(t, h.api("GET", path, other, nil), http.StatusOK)
	wantStatus(t, h.api("GET", path, h.token("client_org1", "secret1"), nil), http.StatusOK)
}

func TestAddClientRotatesSecret(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true})
	old := h.token("client_org1", "secret1")
	h.srv.AddClient(ClientCred{ID: "client_org1", Secret: "rotated", Org: "org_1"})
	wantStatus(t, h.tokenRequest("client_org1", "secret1", clientCredentials), http.StatusUnauthorized)
	h.token("client_org1", "rotated")
	wantStatus(t, h.api("GET", "/api/v2/outbound/campaigns/c1", old, nil), http.StatusOK)

	h.srv.AddClient(ClientCred{ID: "client_new", Secret: "s", Org: "org_9"})
	tok := h.token("client_new", "s")
	wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/c9/start", tok, nil), http.StatusNoContent)
	if c, ok := h.srv.Campaign("org_9", "c9"); !ok || c.CampaignStatus != CampaignOn {
		t.Fatalf("campaign in org_9: %+v %v", c, ok)
	}
	if _, ok := h.srv.Campaign("org_1", "c9"); ok {
		t.Fatal("org_9's campaign is visible in org_1")
	}
}
