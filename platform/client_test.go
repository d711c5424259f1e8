package platform

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestDoSendsTheDocumentedRequest(t *testing.T) {
	tests := []struct {
		name, op, params    string
		method, path, query string
		body                string // "" = no body
	}{
		{"start", OpCampaignStart, `{"campaign_id":"c-1"}`, "POST", "/api/v2/outbound/campaigns/c-1/start", "", ""},
		{"stop", OpCampaignStop, `{"campaign_id":"c-1"}`, "POST", "/api/v2/outbound/campaigns/c-1/stop", "", ""},
		{"get", OpCampaignGet, `{"campaign_id":"c-1"}`, "GET", "/api/v2/outbound/campaigns/c-1", "", ""},
		{"progress", OpCampaignProgress, `{"campaign_id":"c-1"}`, "GET", "/api/v2/outbound/campaigns/c-1/progress", "", ""},
		{"progress of many", OpCampaignProgress, `{"campaign_ids":["c-1","c-2","c-3"]}`, "POST", "/api/v2/outbound/campaigns/progress", "", `["c-1","c-2","c-3"]`},
		{"stats", OpCampaignStats, `{"campaign_id":"c-1"}`, "GET", "/api/v2/outbound/campaigns/c-1/stats", "", ""},
		{"add", OpContactsAdd,
			`{"contact_list_id":"l-9","contacts":[{"id":"k1","data":{"phone":"+15551234","name":"<Ann & Bo>"}},{"data":{"phone":"+15556789","n":"3"},"callable":false}]}`,
			"POST", "/api/v2/outbound/contactlists/l-9/contacts", "",
			`[{"id":"k1","contactListId":"l-9","data":{"name":"<Ann & Bo>","phone":"+15551234"},"callable":true},{"contactListId":"l-9","data":{"n":"3","phone":"+15556789"},"callable":false}]`},
		{"add with flags", OpContactsAdd,
			`{"contact_list_id":"l-9","contacts":[{"data":{"a":"b"}}],"priority":true,"clear_system_data":false,"do_not_queue":true}`,
			"POST", "/api/v2/outbound/contactlists/l-9/contacts", "priority=true&clearSystemData=false&doNotQueue=true",
			`[{"contactListId":"l-9","data":{"a":"b"},"callable":true}]`},
		{"remove", OpContactsRemove, `{"contact_list_id":"l-9","contact_ids":["a","b_2","c.3"]}`,
			"DELETE", "/api/v2/outbound/contactlists/l-9/contacts", "contactIds=a,b_2,c.3", ""},
		{"api get", OpAPIRequest, `{"method":"get","path":"/api/v2/outbound/campaigns","query":{"pageSize":"25","name":"a b&c"}}`,
			"GET", "/api/v2/outbound/campaigns", "name=a+b%26c&pageSize=25", ""},
		{"api post", OpAPIRequest, `{"method":"POST","path":"/api/v2/outbound/campaigns/progress","body":[ "c-1", "c-2" ]}`,
			"POST", "/api/v2/outbound/campaigns/progress", "", `["c-1","c-2"]`},
		{"api encoded path", OpAPIRequest, `{"method":"DELETE","path":"/api/v2/outbound/x%20y"}`,
			"DELETE", "/api/v2/outbound/x%20y", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := newFakePlatform(t)
			c := newTestClient(t, fp, nil)
			res, err := c.Do(context.Background(), tt.op, json.RawMessage(tt.params))
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if res.Status != http.StatusOK || string(res.Body) != `{}` {
				t.Fatalf("result = %d %q", res.Status, res.Body)
			}
			calls := fp.apiRequests()
			if len(calls) != 1 {
				t.Fatalf("API got %d requests, want 1", len(calls))
			}
			got := calls[0]
			if got.method != tt.method || got.rawPath != tt.path || got.rawQuery != tt.query {
				t.Fatalf("request = %s %s ? %s; want %s %s ? %s", got.method, got.rawPath, got.rawQuery, tt.method, tt.path, tt.query)
			}
			checkAPIHeaders(t, got, "tok-1", tt.body != "")
			if tt.body == "" {
				if len(got.body) != 0 {
					t.Fatalf("body = %q, want none", got.body)
				}
			} else if !jsonEqual(t, got.body, []byte(tt.body)) {
				t.Fatalf("body = %s\nwant   %s", got.body, tt.body)
			}
			checkTokenRequests(t, fp, 1)
		})
	}
}

func checkAPIHeaders(t *testing.T, got seenAPI, token string, hasBody bool) {
	t.Helper()
	for k, want := range map[string]string{
		"Authorization": "Bearer " + token,
		"Accept":        "application/json",
		"User-Agent":    "orgdispatch",
	} {
		if v := got.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	wantCT := ""
	if hasBody {
		wantCT = "application/json"
	}
	if v := got.header.Get("Content-Type"); v != wantCT {
		t.Errorf("Content-Type = %q, want %q", v, wantCT)
	}
}

// checkTokenRequests checks the token endpoint got n well-formed
// client-credentials requests.
func checkTokenRequests(t *testing.T, fp *fakePlatform, n int) {
	t.Helper()
	toks := fp.tokenRequests()
	if len(toks) != n {
		t.Fatalf("token endpoint got %d requests, want %d", len(toks), n)
	}
	for _, tr := range toks {
		pass, _ := url.QueryUnescape(tr.pass)
		if tr.method != http.MethodPost || !tr.basicOK || tr.user != testClientID || pass != testSecret {
			t.Fatalf("token request %s basic=%v user=%q: want POST with Basic %s:<secret>", tr.method, tr.basicOK, tr.user, testClientID)
		}
		if tr.contentType != "application/x-www-form-urlencoded" {
			t.Fatalf("token Content-Type = %q", tr.contentType)
		}
		if len(tr.form) != 1 || len(tr.form["grant_type"]) != 1 || tr.form["grant_type"][0] != "client_credentials" {
			t.Fatalf("token form = %v, want exactly grant_type=client_credentials (secret only in the header)", tr.form)
		}
	}
}

func TestDoRejectsInvalidParamsWithoutSending(t *testing.T) {
	fp := newFakePlatform(t)
	c := newTestClient(t, fp, func(c *Config) { c.AllowedPathPrefixes = []string{"/api/v2/outbound/campaigns"} })
	for _, tc := range []struct{ op, params string }{
		{OpCampaignStart, `{"campaign_id":"../../users"}`},
		{OpAPIRequest, `{"method":"GET","path":"/api/v2/outbound/contactlists"}`}, // outside this client's list
		{OpAPIRequest, `{"method":"GET","path":"/api/v2/outbound/campaigns/../contactlists"}`},
		{"nope", `{}`},
	} {
		_, err := c.Do(context.Background(), tc.op, json.RawMessage(tc.params))
		if _, ok := errors.AsType[*InvalidRequestError](err); !ok {
			t.Errorf("Do(%s, %s) = %v, want *InvalidRequestError", tc.op, tc.params, err)
		}
	}
	if _, err := c.Do(context.Background(), OpAPIRequest, json.RawMessage(`{"method":"GET","path":"/api/v2/outbound/campaigns/c-1"}`)); err != nil {
		t.Fatalf("allowed path: %v", err)
	}
	if n := len(fp.apiRequests()); n != 1 {
		t.Fatalf("API got %d requests, want only the valid one", n)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	good := Config{APIBase: "https://api.mypurecloud.ie", TokenURL: "https://login.mypurecloud.ie/oauth/token", ClientID: "id", ClientSecret: "sec"}
	if _, err := New(good); err != nil {
		t.Fatalf("New(good): %v", err)
	}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no api base", func(c *Config) { c.APIBase = "" }},
		{"relative api base", func(c *Config) { c.APIBase = "api.mypurecloud.ie" }},
		{"ftp api base", func(c *Config) { c.APIBase = "ftp://api.mypurecloud.ie" }},
		{"credentials in api base", func(c *Config) { c.APIBase = "https://u:p@api.mypurecloud.ie" }},
		{"query in token url", func(c *Config) { c.TokenURL = "https://login.mypurecloud.ie/oauth/token?x=1" }},
		{"no token url", func(c *Config) { c.TokenURL = "" }},
		{"no client id", func(c *Config) { c.ClientID = "" }},
		{"no secret", func(c *Config) { c.ClientSecret = "" }},
		{"bad prefix", func(c *Config) { c.AllowedPathPrefixes = []string{"/api/v2/../"} }},
		{"relative prefix", func(c *Config) { c.AllowedPathPrefixes = []string{"api/v2/"} }},
	}
	for _, tt := range tests {
		cfg := good
		tt.edit(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", tt.name)
		}
	}
}

func TestLimits(t *testing.T) {
	fp := newFakePlatform(t)
	fp.setAPI(func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v2/organizations/limits/namespaces/platform.api" {
			writeJSON(w, 404, `{"status":404,"code":"not.found","message":"no"}`)
			return
		}
		writeJSON(w, 200, `{"entities":[{"key":"client.credentials.token.rate.per.minute","namespace":"platform.api","value":300},{"key":"","value":1}]}`)
	})
	var before int
	c := newTestClient(t, fp, func(c *Config) { c.BeforeRequest = func(context.Context) error { before++; return nil } })
	got, err := c.Limits(context.Background(), NamespacePlatformAPI)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Limit{{Key: LimitKeyTokenRate, Namespace: NamespacePlatformAPI, Value: 300}}; !slices.Equal(got, want) {
		t.Fatalf("Limits = %+v, want %+v", got, want)
	}
	if before != 1 {
		t.Fatalf("BeforeRequest ran %d times, want 1: the limits API counts against the quota", before)
	}
	if _, err := c.Limits(context.Background(), "outbound"); err == nil {
		t.Fatal("Limits of a namespace the platform does not know: no error")
	} else if _, ok := errors.AsType[*PermanentError](err); !ok {
		t.Fatalf("Limits = %v, want a *PermanentError", err)
	}
	if _, err := c.Limits(context.Background(), "../x"); err == nil {
		t.Fatal("a namespace with a slash was accepted")
	}
}
