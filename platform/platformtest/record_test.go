package platformtest

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRequestsFilter(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true, Limit: 2})
	t1 := h.token("client_org1", "secret1")
	t2 := h.token("client_org2", "secret2")
	start := h.clock.Now()
	h.api("GET", campaignPath, t1, nil)
	h.clock.Advance(time.Second)
	mid := h.clock.Now()
	h.api("POST", "/api/v2/outbound/campaigns/c1/start", t2, nil)
	h.api("GET", campaignPath, t1, nil)
	h.api("GET", campaignPath, t1, nil) // 429
	h.api("GET", campaignPath, "", nil) // 401, nobody

	all := h.srv.Requests(RequestFilter{})
	if len(all) != 7 {
		t.Fatalf("%d requests recorded, want 7: %+v", len(all), all)
	}
	first := all[2]
	if first.ClientID != "client_org1" || first.Org != "org_1" || first.Token != t1 || first.Method != "GET" ||
		first.Path != campaignPath || first.Status != 200 || !first.At.Equal(start) {
		t.Fatalf("first API request recorded as %+v", first)
	}
	count := func(f RequestFilter) int { return len(h.srv.Requests(f)) }
	for _, tc := range []struct {
		f    RequestFilter
		want int
	}{
		{RequestFilter{PathPrefix: "/api/"}, 5},
		{RequestFilter{ClientID: "client_org1"}, 4}, // its token request too
		{RequestFilter{Org: "org_2", PathPrefix: "/api/"}, 1},
		{RequestFilter{Method: "POST"}, 3},
		{RequestFilter{Status: 429}, 1},
		{RequestFilter{Status: 401}, 1},
		{RequestFilter{Since: mid, PathPrefix: "/api/"}, 4},
		{RequestFilter{Until: mid}, 3},
		{RequestFilter{ClientID: "client_org1", Since: mid, Status: 200}, 1},
	} {
		if got := count(tc.f); got != tc.want {
			t.Errorf("Requests(%+v): %d, want %d", tc.f, got, tc.want)
		}
	}
}

func TestRequestLogIsBounded(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true, MaxRecorded: 5})
	tok := h.token("client_org1", "secret1")
	for i := range 12 {
		h.api("GET", fmt.Sprintf("/api/v2/outbound/campaigns/c%d", i), tok, nil)
	}
	got := h.srv.Requests(RequestFilter{})
	if len(got) != 5 {
		t.Fatalf("%d recorded, want 5", len(got))
	}
	for i, r := range got {
		if want := fmt.Sprintf("/api/v2/outbound/campaigns/c%d", 7+i); r.Path != want {
			t.Fatalf("entry %d is %s, want %s (oldest first)", i, r.Path, want)
		}
	}
	if st := h.srv.Stats("client_org1"); st.Requests != 12 {
		t.Fatalf("stats count %d requests, want 12 whatever the log keeps", st.Requests)
	}

	off := newHarness(t, Config{AutoCreate: true, MaxRecorded: -1})
	var observed int
	off.srv.OnRequest(func(Request) { observed++ }) // requests here are sequential
	off.api("GET", campaignPath, off.token("client_org1", "secret1"), nil)
	if n := len(off.srv.Requests(RequestFilter{})); n != 0 || observed != 2 {
		t.Fatalf("recording off: %d recorded, %d observed", n, observed)
	}
}

func TestOnRequestSeesEveryAnswerBeforeTheCaller(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true})
	var mu sync.Mutex
	var got []Request
	for range 2 { // two observers, both called
		h.srv.OnRequest(func(r Request) {
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		})
	}
	tok := h.token("client_org1", "secret1")
	h.api("GET", campaignPath, tok, nil)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 4 || got[2].Path != campaignPath || got[3].Path != campaignPath || got[3].Status != 200 {
		t.Fatalf("observed %+v", got)
	}
}

// Many clients at once, each on its own bucket: every client gets exactly
// its limit admitted, the rest refused, and the counts add up (run with
// -race for the concurrency check).
func TestConcurrentClients(t *testing.T) {
	const clients, limit, perClient = 20, 15, 25
	var creds []ClientCred
	for i := range clients {
		creds = append(creds, ClientCred{ID: fmt.Sprintf("c%d", i), Secret: "s", Org: fmt.Sprintf("org_%d", i%4)})
	}
	h := newHarness(t, Config{Clients: creds, Limit: limit, Scope: ScopeClient, AutoCreate: true})
	var observed atomic.Int64
	h.srv.OnRequest(func(r Request) {
		if strings.HasPrefix(r.Path, "/api/") {
			observed.Add(1)
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for _, c := range creds {
		tok := h.token(c.ID, c.Secret)
		wg.Go(func() {
			for j := range perClient {
				req, _ := http.NewRequest("POST", h.srv.URL+"/api/v2/outbound/contactlists/l/contacts",
					strings.NewReader(fmt.Sprintf(`[{"data":{"n":"%d"}}]`, j)))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := h.http.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	perOrg := map[string]int{}
	for _, c := range creds {
		st := h.srv.Stats(c.ID)
		if st.Requests != perClient || st.Succeeded != limit || st.RateLimited != perClient-limit {
			t.Fatalf("client %s: %+v", c.ID, st)
		}
		perOrg[c.Org] += limit
	}
	for org, want := range perOrg {
		if got := len(h.srv.Contacts(org, "l")); got != want {
			t.Fatalf("org %s has %d contacts, want %d", org, got, want)
		}
	}
	if n := observed.Load(); n != clients*perClient {
		t.Fatalf("observers saw %d API requests, want %d", n, clients*perClient)
	}
	if n := len(h.srv.Requests(RequestFilter{PathPrefix: "/api/", Status: 429})); n != clients*(perClient-limit) {
		t.Fatalf("%d 429s recorded", n)
	}
}

func TestConfigValidate(t *testing.T) {
	good := ClientCred{ID: "a", Secret: "s", Org: "o"}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"zero", Config{}, ""},
		{"full", Config{Clients: []ClientCred{good}, Limit: 300, Window: time.Minute, Scope: ScopeOrg,
			SharedBuckets: map[string]string{"a": "x"}, ErrorRatio: 0.5}, ""},
		{"negative limit", Config{Limit: -1}, "limit"},
		{"negative window", Config{Window: -time.Second}, "window"},
		{"bad scope", Config{Scope: "platform"}, "scope"},
		{"ratio", Config{ErrorRatio: 1.5}, "error ratio"},
		{"latency", Config{Latency: -1}, "latency"},
		{"ttl", Config{TokenTTL: -1}, "token TTL"},
		{"duplicate client", Config{Clients: []ClientCred{good, good}}, "twice"},
		{"colon in id", Config{Clients: []ClientCred{{ID: "a:b", Secret: "s", Org: "o"}}}, "colon"},
		{"no secret", Config{Clients: []ClientCred{{ID: "a", Org: "o"}}}, "secret"},
		{"no org", Config{Clients: []ClientCred{{ID: "a", Secret: "s"}}}, "org"},
		{"shared unknown", Config{Clients: []ClientCred{good}, SharedBuckets: map[string]string{"b": "x"}}, "unknown client"},
		{"campaign without id", Config{Campaigns: map[string][]Campaign{"o": {{Name: "x"}}}}, "no id"},
		{"stop delay", Config{StopDelay: -1}, "stop delay"},
		{"endpoint limit", Config{EndpointLimits: []EndpointLimit{outboundLimit}}, ""},
		{"endpoint prefix", Config{EndpointLimits: []EndpointLimit{{PathPrefix: "outbound", Limit: 1, Key: "k", Namespace: "n"}}}, "/api/"},
		{"endpoint limit 0", Config{EndpointLimits: []EndpointLimit{{PathPrefix: "/api/", Key: "k", Namespace: "n"}}}, "not positive"},
		{"endpoint window", Config{EndpointLimits: []EndpointLimit{{PathPrefix: "/api/", Limit: 1, Window: -1, Key: "k", Namespace: "n"}}}, "window"},
		{"endpoint key", Config{EndpointLimits: []EndpointLimit{{PathPrefix: "/api/", Limit: 1, Namespace: "n"}}}, "empty key"},
		{"endpoint namespace", Config{EndpointLimits: []EndpointLimit{{PathPrefix: "/api/", Limit: 1, Key: "k"}}}, "empty namespace"},
		{"endpoint namespace slash", Config{EndpointLimits: []EndpointLimit{{PathPrefix: "/api/", Limit: 1, Key: "k", Namespace: "a/b"}}}, "slash"},
		{"endpoint names the main limit", Config{EndpointLimits: []EndpointLimit{{PathPrefix: "/api/", Limit: 1, Key: TokenRateLimitKey, Namespace: PlatformAPINamespace}}}, "twice"},
		{"endpoint limits share a name", Config{EndpointLimits: []EndpointLimit{outboundLimit, outboundLimit}}, "twice"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("New accepted an invalid Config")
		}
	}()
	New(Config{Limit: -1})
}

// Every answer — API, token endpoint, 401, 404, 405, 429 — carries a fresh
// ININ-Correlation-Id, repeated as contextId in an error body and recorded
// with the request, and no inin-ratelimit-* header.
func TestCorrelationID(t *testing.T) {
	h := newHarness(t, Config{Limit: 1, AutoCreate: true})
	tok := h.token("client_org1", "secret1")
	answers := []struct {
		name    string
		r       response
		want    int
		errBody bool // the platform's error body (not the OAuth one)
	}{
		{"API 200", h.api("GET", campaignPath+"?x=1", tok, nil), http.StatusOK, false},
		{"API 429", h.api("GET", campaignPath, tok, nil), http.StatusTooManyRequests, true},
		{"API 401 no token", h.api("GET", campaignPath, "", nil), http.StatusUnauthorized, true},
		{"API 401 bad token", h.api("GET", campaignPath, "nope", nil), http.StatusUnauthorized, true},
		{"404 outside /api/", h.api("GET", "/index.html", "", nil), http.StatusNotFound, true},
		{"token 200", h.tokenRequest("client_org1", "secret1", clientCredentials), http.StatusOK, false},
		{"token 401", h.tokenRequest("client_org1", "wrong", clientCredentials), http.StatusUnauthorized, false},
		{"token 405", h.send(mustRequest(t, "GET", h.srv.TokenURL())), http.StatusMethodNotAllowed, false},
	}
	seen := map[string]string{}
	for _, a := range answers {
		wantStatus(t, a.r, a.want)
		id := today(t, a.r)
		if prev, dup := seen[id]; dup {
			t.Fatalf("%s and %s share correlation id %s", prev, a.name, id)
		}
		seen[id] = a.name
		if a.errBody {
			a.r.apiErr(t) // contextId == ININ-Correlation-Id
		}
	}
	recorded := h.srv.Requests(RequestFilter{})
	if len(recorded) != len(answers)+1 { // + the first token request
		t.Fatalf("%d recorded", len(recorded))
	}
	for i, a := range answers {
		rec := recorded[i+1]
		if id := a.r.header.Get("ININ-Correlation-Id"); rec.CorrelationID != id {
			t.Errorf("%s: recorded correlation id %q, answered %q", a.name, rec.CorrelationID, id)
		}
	}
	if q := recorded[1].Query; q != "x=1" {
		t.Errorf("recorded query %q, want x=1", q)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
