package platformtest

import (
	"net/http"
	"testing"
	"time"
)

// endpointCounted is how many requests tok's window for endpoint limit i
// has admitted, by the simulator's clock.
func (h *harness) endpointCounted(tok string, i int, window time.Duration) int {
	h.t.Helper()
	v, ok := h.srv.tokens.Load(tok)
	if !ok {
		h.t.Fatalf("endpointCounted: unknown token")
	}
	return v.(*token).buckets.endpoint[i].peek(h.clock.Now(), limits{window: window}).count
}

var outboundLimit = EndpointLimit{PathPrefix: "/api/v2/outbound/", Limit: 2, Window: 20 * time.Second,
	Key: "outbound.rate.per.minute", Namespace: "outbound"}

func TestEndpointLimit(t *testing.T) {
	h := newHarness(t, Config{Limit: 5, AutoCreate: true, EndpointLimits: []EndpointLimit{outboundLimit}})
	tok := h.token("client_org1", "secret1")
	other := limitsPath + "/" + PlatformAPINamespace // outside the prefix

	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	h.clock.Advance(5 * time.Second)
	// The endpoint window is full: its own 429, naming its limit per minute,
	// Retry-After until its own reset.
	rateLimited(t, h.api("GET", campaignPath, tok, nil), 15,
		&Limit{Key: "outbound.rate.per.minute", Namespace: "outbound", Value: 6})
	wantCounted(t, h, tok, 2) // refused: not counted in the main window either
	// Outside the prefix only the main window applies.
	wantStatus(t, h.api("GET", other, tok, nil), http.StatusOK)
	wantStatus(t, h.api("GET", other, tok, nil), http.StatusOK)
	wantStatus(t, h.api("GET", other, tok, nil), http.StatusOK)
	wantCounted(t, h, tok, 5)
	// Now the main window is full too, and resets last: it is named.
	rateLimited(t, h.api("GET", campaignPath, tok, nil), 55, mainLimit(5))
	rateLimited(t, h.api("GET", other, tok, nil), 55, mainLimit(5))

	// After the endpoint window's reset, the main window still refuses, and
	// the endpoint window has counted nothing.
	h.clock.Advance(15 * time.Second)
	rateLimited(t, h.api("GET", campaignPath, tok, nil), 40, mainLimit(5))
	if n := h.endpointCounted(tok, 0, outboundLimit.Window); n != 0 {
		t.Fatalf("endpoint window counted %d refused requests", n)
	}
	h.clock.Advance(40 * time.Second)
	wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
	if n := h.endpointCounted(tok, 0, outboundLimit.Window); n != 1 {
		t.Fatalf("endpoint window counted %d, want 1", n)
	}
}

// Zero Window is the main window; nested prefixes must all admit; the
// endpoint limit applies with an unlimited main limit too; the scope is the
// main one's.
func TestEndpointLimitVariants(t *testing.T) {
	campaigns := EndpointLimit{PathPrefix: "/api/v2/outbound/campaigns/", Limit: 1, Key: "campaigns.rate.per.minute", Namespace: "outbound"}
	clients := []ClientCred{{ID: "a1", Secret: "s", Org: "org_a"}, {ID: "a2", Secret: "s", Org: "org_a"}}
	for _, tc := range []struct {
		name   string
		cfg    Config
		second bool // is a second token of the same client limited?
		other  bool // is the other client of the same org limited?
		want   Limit
		retry  int
	}{
		{"token scope, main window", Config{Limit: 10, Window: 30 * time.Second, EndpointLimits: []EndpointLimit{campaigns}},
			false, false, Limit{"campaigns.rate.per.minute", "outbound", 2}, 30},
		{"unlimited main", Config{EndpointLimits: []EndpointLimit{campaigns}},
			false, false, Limit{"campaigns.rate.per.minute", "outbound", 1}, 60},
		{"nested, the inner one full", Config{Limit: 10, EndpointLimits: []EndpointLimit{{PathPrefix: "/api/v2/outbound/", Limit: 5, Key: "outbound.rate.per.minute", Namespace: "outbound"}, campaigns}},
			false, false, Limit{"campaigns.rate.per.minute", "outbound", 1}, 60},
		{"client scope", Config{Limit: 10, Scope: ScopeClient, EndpointLimits: []EndpointLimit{campaigns}},
			true, false, Limit{"campaigns.rate.per.minute", "outbound", 1}, 60},
		{"org scope", Config{Limit: 10, Scope: ScopeOrg, EndpointLimits: []EndpointLimit{campaigns}},
			true, true, Limit{"campaigns.rate.per.minute", "outbound", 1}, 60},
		{"shared bucket", Config{Limit: 10, SharedBuckets: map[string]string{"a1": "x", "a2": "x"}, EndpointLimits: []EndpointLimit{campaigns}},
			true, true, Limit{"campaigns.rate.per.minute", "outbound", 1}, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Clients, tc.cfg.AutoCreate = clients, true
			h := newHarness(t, tc.cfg)
			tok := h.token("a1", "s")
			wantStatus(t, h.api("GET", campaignPath, tok, nil), http.StatusOK)
			rateLimited(t, h.api("GET", campaignPath, tok, nil), tc.retry, &tc.want)
			// Another path under a nested outer prefix is still admitted.
			wantStatus(t, h.api("GET", "/api/v2/outbound/contactlists/l/contacts", tok, nil), http.StatusMethodNotAllowed)
			for _, probe := range []struct {
				name    string
				tok     string
				limited bool
			}{
				{"a1's second token", h.token("a1", "s"), tc.second},
				{"a2", h.token("a2", "s"), tc.other},
			} {
				r := h.api("GET", campaignPath, probe.tok, nil)
				if limited := r.status == http.StatusTooManyRequests; limited != probe.limited {
					t.Errorf("%s: status %d, limited = %v, want %v", probe.name, r.status, limited, probe.limited)
				}
			}
		})
	}
}
