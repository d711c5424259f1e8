package platformtest

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestLimitsAPI(t *testing.T) {
	outbound := EndpointLimit{PathPrefix: "/api/v2/outbound/", Limit: 10, Window: 10 * time.Second,
		Key: "outbound.rate.per.minute", Namespace: "outbound"}
	contacts := EndpointLimit{PathPrefix: "/api/v2/outbound/contactlists/", Limit: 5,
		Key: "contacts.rate.per.minute", Namespace: "outbound"}
	users := EndpointLimit{PathPrefix: "/api/v2/users/", Limit: 2, Key: "users.rate.per.minute", Namespace: PlatformAPINamespace}
	eps := []EndpointLimit{outbound, contacts, users}
	for _, tc := range []struct {
		name string
		cfg  Config
		ns   string
		want []Limit // nil: 404
	}{
		{"default window", Config{Limit: 300}, PlatformAPINamespace, []Limit{*mainLimit(300)}},
		{"compressed window", Config{Limit: 50, Window: 10 * time.Second}, PlatformAPINamespace, []Limit{*mainLimit(300)}},
		{"unlimited", Config{}, PlatformAPINamespace, []Limit{}},
		{"unknown namespace", Config{Limit: 300}, "outbound", nil},
		{"endpoint limits in platform.api", Config{Limit: 50, Window: 30 * time.Second, EndpointLimits: eps}, PlatformAPINamespace,
			[]Limit{*mainLimit(100), {Key: "users.rate.per.minute", Namespace: PlatformAPINamespace, Value: 4}}},
		{"endpoint limits in their namespace", Config{Limit: 50, Window: 30 * time.Second, EndpointLimits: eps}, "outbound",
			[]Limit{{Key: "outbound.rate.per.minute", Namespace: "outbound", Value: 60}, {Key: "contacts.rate.per.minute", Namespace: "outbound", Value: 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			r := h.api("GET", limitsPath+"/"+tc.ns, h.token("client_org1", "secret1"), nil)
			today(t, r)
			if tc.want == nil {
				wantStatus(t, r, http.StatusNotFound)
				if e := r.apiErr(t); e.Code != "not.found" {
					t.Fatalf("code %q", e.Code)
				}
				return
			}
			wantStatus(t, r, http.StatusOK)
			var got limitEntities
			r.json(t, &got)
			if got.Entities == nil || !reflect.DeepEqual(got.Entities, tc.want) {
				t.Fatalf("entities %s, want %+v", r.body, tc.want)
			}
		})
	}
}

func TestLimitsAPIFollowsSetLimit(t *testing.T) {
	h := newHarness(t, Config{Limit: 300})
	tok := h.token("client_org1", "secret1")
	h.srv.SetLimit(50, 10*time.Second)
	var got limitEntities
	r := h.api("GET", limitsPath+"/"+PlatformAPINamespace, tok, nil)
	wantStatus(t, r, http.StatusOK)
	r.json(t, &got)
	if len(got.Entities) != 1 || got.Entities[0] != *mainLimit(300) {
		t.Fatalf("after SetLimit(50, 10s): %s", r.body)
	}
	h.srv.SetLimit(120, 0)
	r = h.api("GET", limitsPath+"/"+PlatformAPINamespace, tok, nil)
	r.json(t, &got)
	if len(got.Entities) != 1 || got.Entities[0] != *mainLimit(720) {
		t.Fatalf("after SetLimit(120, 0): %s", r.body)
	}
}

// The limits API is an API request like any other: authenticated and
// counted, so it can itself be refused with 429.
func TestLimitsAPIIsCounted(t *testing.T) {
	h := newHarness(t, Config{Limit: 2})
	tok := h.token("client_org1", "secret1")
	path := limitsPath + "/" + PlatformAPINamespace
	wantStatus(t, h.api("GET", path, "", nil), http.StatusUnauthorized)
	wantStatus(t, h.api("GET", path, tok, nil), http.StatusOK)
	wantStatus(t, h.api("GET", limitsPath+"/nope", tok, nil), http.StatusNotFound)
	rateLimited(t, h.api("GET", path, tok, nil), 60, mainLimit(2))
	if st := h.srv.Stats("client_org1"); st.Requests != 3 || st.Succeeded != 1 || st.RateLimited != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLimitNamespaces(t *testing.T) {
	h := newHarness(t, Config{EndpointLimits: []EndpointLimit{
		{PathPrefix: "/api/v2/outbound/", Limit: 1, Key: "a", Namespace: "outbound"},
		{PathPrefix: "/api/v2/users/", Limit: 1, Key: "b", Namespace: PlatformAPINamespace},
		{PathPrefix: "/api/v2/outbound/campaigns/", Limit: 1, Key: "c", Namespace: "outbound"},
	}})
	tok := h.token("client_org1", "secret1")
	r := h.api("GET", limitsPath, tok, nil)
	wantStatus(t, r, http.StatusOK)
	var got namespaceListing
	r.json(t, &got)
	want := namespaceListing{Entities: []namespaceName{{PlatformAPINamespace}, {"outbound"}}, PageSize: 2, PageNumber: 1, Total: 2}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("namespaces %s", r.body)
	}

	for _, p := range []string{limitsPath + "/", limitsPath + "/outbound/defaults/x", limitsPath + "x"} {
		wantStatus(t, h.api("GET", p, tok, nil), http.StatusNotFound)
	}
	r = h.api("POST", limitsPath+"/outbound", tok, nil)
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if r.header.Get("Allow") != "GET" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
}
