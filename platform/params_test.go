package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestValidateParams(t *testing.T) {
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ",")
	}
	bigData := strings.Repeat("x", 600)
	tests := []struct {
		op, params string
		wantErr    string // "" = valid; else a substring of the reason
	}{
		{OpCampaignStart, `{"campaign_id":"c0a8-42"}`, ""},
		{OpCampaignStop, `{"campaign_id":"8d3a1e52-0a1c-4a7e-9d5e-2f1b9c0d1e2f"}`, ""},
		{OpCampaignGet, `{"campaign_id":"abc"}`, ""},
		{OpCampaignProgress, ` {"campaign_id":"abc"} `, ""},
		{OpCampaignStats, `{"campaign_id":"abc"}`, ""},
		{OpCampaignProgress, `{"campaign_ids":["a","b-2"]}`, ""},
		{OpCampaignProgress, `{"campaign_ids":[]}`, "got none"},
		{OpCampaignProgress, `{}`, "campaign_id (or campaign_ids) is required"},
		{OpCampaignProgress, `{"campaign_id":"a","campaign_ids":["b"]}`, "not both"},
		{OpCampaignProgress, `{"campaign_ids":["a","a"]}`, "repeats"},
		{OpCampaignProgress, `{"campaign_ids":["a/b"]}`, "campaign_ids[0]"},
		{OpCampaignProgress, `{"campaign_ids":[` + many(101, func(i int) string { return fmt.Sprintf(`"c%d"`, i) }) + `]}`, "got 101"},
		{OpCampaignStop, `{"campaign_id":"a","wait_until_off":"3m"}`, ""},
		{OpCampaignStop, `{"campaign_id":"a","wait_until_off":"0s"}`, ""},
		{OpCampaignStop, `{"campaign_id":"a","wait_until_off":"11m"}`, "want 1s to 10m0s"},
		{OpCampaignStop, `{"campaign_id":"a","wait_until_off":"soon"}`, "want a duration"},
		{OpCampaignSetStatus, `{"campaign_id":"a","status":"off","wait_until_off":"90s"}`, ""},
		{OpCampaignSetStatus, `{"campaign_id":"a","status":"on","wait_until_off":"90s"}`, "goes with status off"},
		{OpCampaignStart, `{}`, "campaign_id is required"},
		{OpCampaignStart, ``, "params are required"},
		{OpCampaignStart, `null`, "params are required"},
		{OpCampaignStart, `[]`, "JSON object"},
		{OpCampaignStart, `{"campaign_id":"a"} {}`, "data after"},
		{OpCampaignStart, `{"campaign_id":"a","x":1}`, "unknown field"},
		{OpCampaignStart, `{"campaign_id":7}`, "params:"},
		{OpCampaignStart, `{"campaign_id":"../users"}`, "campaign_id"},
		{OpCampaignStart, `{"campaign_id":"a/b"}`, "campaign_id"},
		{OpCampaignStart, `{"campaign_id":"a%2fb"}`, "campaign_id"},
		{OpCampaignStart, `{"campaign_id":"a?x=1"}`, "campaign_id"},
		{OpCampaignStart, `{"campaign_id":"a b"}`, "campaign_id"},
		{OpCampaignStart, `{"campaign_id":"` + strings.Repeat("a", 65) + `"}`, "campaign_id"},
		{OpCampaignStart, `{"campaign_id":"` + strings.Repeat("a", 64) + `"}`, ""},
		{OpCampaignSetStatus, `{"campaign_id":"a","status":"on"}`, ""},
		{OpCampaignSetStatus, `{"campaign_id":"a","status":"off"}`, ""},
		{OpCampaignSetStatus, `{"campaign_id":"a"}`, "status is required"},
		{OpCampaignSetStatus, `{"campaign_id":"a","status":"stopping"}`, "set by the platform"},
		{OpCampaignSetStatus, `{"campaign_id":"a","status":"complete"}`, "set by the platform"},
		{OpCampaignSetStatus, `{"campaign_id":"a","status":"forced_off"}`, "set by the platform"},
		{OpCampaignSetStatus, `{"campaign_id":"a","status":"ON"}`, "not a campaign status"},
		{OpCampaignSetStatus, `{"status":"on"}`, "campaign_id is required"},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"data":{"phone":"+15551234"}}]}`, ""},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"id":"c_1.x~","data":{"a":"b"},"callable":false}],"priority":true,"clear_system_data":false,"do_not_queue":true}`, ""},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[]}`, "got none"},
		{OpContactsAdd, `{"contact_list_id":"l1"}`, "got none"},
		{OpContactsAdd, `{"contacts":[{"data":{"a":"b"}}]}`, "contact_list_id is required"},
		{OpContactsAdd, `{"contact_list_id":"l/1","contacts":[{"data":{"a":"b"}}]}`, "contact_list_id"},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"id":"a,b","data":{"a":"b"}}]}`, "contacts[0].id"},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"id":"a","data":{"a":"b"}},{"id":"a","data":{"a":"b"}}]}`, "repeats"},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"data":{}}]}`, "at least one column"},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"data":null}]}`, "at least one column"},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"data":{"":"x"}}]}`, "column name"},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"data":{"phone":"+1555","age":42}}]}`, `contacts[0].data["age"]: want a string, got a number`},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"data":{"a":"b"}},{"data":{"vip":true}}]}`, `contacts[1].data["vip"]: want a string, got a boolean`},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"data":{"a":null}}]}`, `contacts[0].data["a"]: want a string, got null`},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"data":{"a":{"b":"c"}}}]}`, `contacts[0].data["a"]: want a string, got an object`},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"data":{"a":["x"]}}]}`, `contacts[0].data["a"]: want a string, got an array`},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[{"data":{"a":"b"},"extra":1}]}`, "unknown field"},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[` + many(1000, func(int) string { return `{"data":{"a":"b"}}` }) + `]}`, ""},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[` + many(1001, func(int) string { return `{"data":{"a":"b"}}` }) + `]}`, "got 1001"},
		{OpContactsAdd, `{"contact_list_id":"l1","contacts":[` + many(1000, func(int) string { return `{"data":{"a":"` + bigData + `"}}` }) + `]}`, "512000-byte limit"},
		{OpContactsRemove, `{"contact_list_id":"l1","contact_ids":["a","b","c"]}`, ""},
		{OpContactsRemove, `{"contact_list_id":"l1","contact_ids":[]}`, "got none"},
		{OpContactsRemove, `{"contact_list_id":"l1","contact_ids":["a,b"]}`, "contact_ids[0]"},
		{OpContactsRemove, `{"contact_list_id":"l1","contact_ids":["a&x=1"]}`, "contact_ids[0]"},
		{OpContactsRemove, `{"contact_list_id":"l1","contact_ids":["a",""]}`, "contact_ids[1]"},
		{OpContactsRemove, `{"contact_list_id":"l1","contact_ids":["a","a"]}`, "repeats"},
		{OpContactsRemove, `{"contact_list_id":"l1","contact_ids":[` + many(100, func(i int) string { return fmt.Sprintf(`"c%d"`, i) }) + `]}`, ""},
		{OpContactsRemove, `{"contact_list_id":"l1","contact_ids":[` + many(101, func(i int) string { return fmt.Sprintf(`"c%d"`, i) }) + `]}`, "got 101"},
		{OpAPIRequest, `{"method":"GET","path":"/api/v2/outbound/campaigns"}`, ""},
		{OpAPIRequest, `{"method":"get","path":"/api/v2/outbound/campaigns","query":{"pageSize":"25"}}`, ""},
		{OpAPIRequest, `{"method":"POST","path":"/api/v2/outbound/campaigns/progress","body":["a","b"]}`, ""},
		{OpAPIRequest, `{"method":"PATCH","path":"/api/v2/outbound/x","body":null}`, ""},
		{OpAPIRequest, `{"method":"DELETE","path":"/api/v2/routing/predictors/p1"}`, ""}, // no allow-list in ValidateParams
		{OpAPIRequest, `{"method":"HEAD","path":"/api/v2/outbound/x"}`, "method"},
		{OpAPIRequest, `{"path":"/api/v2/outbound/x"}`, "method is required"},
		{OpAPIRequest, `{"method":"GET"}`, "path is required"},
		{OpAPIRequest, `{"method":"GET","path":"https://evil.example/api/v2/outbound/x"}`, "path"},
		{OpAPIRequest, `{"method":"GET","path":"/api/v2/outbound/../users"}`, ".."},
		{OpAPIRequest, `{"method":"GET","path":"/api/v2/outbound/x","body":{"a":1}}`, "GET request has no body"},
		{OpAPIRequest, `{"method":"GET","path":"/api/v2/outbound/x","query":{"a":1}}`, "params:"},
		{OpAPIRequest, `{"method":"GET","path":"/api/v2/outbound/x","query":{"":"1"}}`, "parameter name"},
		{OpAPIRequest, `{"method":"GET","path":"/api/v2/outbound/x","query":{"a":"x\ny"}}`, "printable"},
		{OpAPIRequest, `{"method":"POST","path":"/api/v2/outbound/x","body":"` + strings.Repeat("x", MaxRequestBodyBytes) + `"}`, "512000-byte limit"},
		{"campaign.delete", `{"campaign_id":"a"}`, "unknown op"},
		{"", `{}`, "op is required"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d_%s", i, tt.op), func(t *testing.T) {
			err := ValidateParams(tt.op, json.RawMessage(tt.params))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateParams(%s, %.120s): %v", tt.op, tt.params, err)
				}
				return
			}
			var ire *InvalidRequestError
			if !errors.As(err, &ire) {
				t.Fatalf("ValidateParams(%s, %.120s) = %v (%T), want *InvalidRequestError", tt.op, tt.params, err, err)
			}
			if !strings.Contains(ire.Reason, tt.wantErr) {
				t.Fatalf("reason %q does not contain %q", ire.Reason, tt.wantErr)
			}
			if ire.Op != tt.op {
				t.Fatalf("Op = %q, want %q", ire.Op, tt.op)
			}
		})
	}
}

func TestValidateParamsAllowed(t *testing.T) {
	routing := json.RawMessage(`{"method":"GET","path":"/api/v2/routing/predictors/p1"}`)
	outbound := json.RawMessage(`{"method":"GET","path":"/api/v2/outbound/campaigns"}`)
	if err := ValidateParamsAllowed(OpAPIRequest, outbound, nil); err != nil {
		t.Fatalf("outbound with default prefixes: %v", err)
	}
	if err := ValidateParamsAllowed(OpAPIRequest, routing, nil); err == nil {
		t.Fatal("routing with default prefixes: want an error")
	}
	if err := ValidateParamsAllowed(OpAPIRequest, routing, []string{"/api/v2/routing/predictors"}); err != nil {
		t.Fatalf("routing with its prefix: %v", err)
	}
	if err := ValidateParamsAllowed(OpAPIRequest, outbound, []string{}); err == nil {
		t.Fatal("empty allow-list: want an error")
	}
	if err := ValidateParamsAllowed(OpCampaignStart, json.RawMessage(`{"campaign_id":"a"}`), []string{}); err != nil {
		t.Fatalf("allow-list applies to api.request only: %v", err)
	}
}

func TestValidateAPIRequestPath(t *testing.T) {
	prefixes := []string{"/api/v2/outbound/", "/api/v2/routing/predictors"}
	tests := []struct {
		path string
		ok   bool
	}{
		{"/api/v2/outbound/campaigns", true},
		{"/api/v2/outbound/campaigns/8d3a1e52-0a1c/progress", true},
		{"/api/v2/outbound/contactlists/x:y@z,w=v+u~t_s.r", true},
		{"/api/v2/outbound/name%20with%20space", true},
		{"/api/v2/outbound/caf%C3%A9", true},
		{"/api/v2/routing/predictors", true},
		{"/api/v2/routing/predictors/p1/models", true},
		{"/api/v2/outbound/", false}, // trailing slash, nothing below the prefix
		{"/api/v2/outbound", false},  // the prefix ends in '/': only paths below it
		{"/api/v2/routing/predictorsX", false},
		{"/api/v2/users/me", false},
		{"", false},
		{"api/v2/outbound/x", false},
		{"https://evil.example/api/v2/outbound/x", false},
		{"//evil.example/api/v2/outbound/x", false},
		{"/api/v2/outbound/http://evil.example", false},
		{"/api/v2/outbound/../../users", false},
		{"/api/v2/outbound/..", false},
		{"/api/v2/outbound/a..b", false},
		{"/api/v2/outbound/./x", false},
		{"/api/v2/outbound//x", false},
		{"/api/v2/outbound/x/", false},
		{"/api/v2/outbound/%2e%2e/users", false},
		{"/api/v2/outbound/%2E%2E/users", false},
		{"/api/v2/outbound/x%2fy", false},
		{"/api/v2/outbound/x%2Fy", false},
		{"/api/v2/outbound/x%5cy", false},
		{"/api/v2/outbound/%252e%252e/users", false},
		{"/api/v2/outbound/%41", false}, // needlessly encoded 'A'
		{"/api/v2/outbound/%4", false},
		{"/api/v2/outbound/%zz", false},
		{"/api/v2/outbound/x%00", false},
		{"/api/v2/outbound/x%0a", false},
		{"/api/v2/outbound\\x", false},
		{"/api/v2/outbound/x\\..\\users", false},
		{"/api/v2/outbound/x\ny", false},
		{"/api/v2/outbound/x y", false},
		{"/api/v2/outbound/x?y=1", false},
		{"/api/v2/outbound/x#y", false},
		{"/api/v2/outbound/x;y", false},
		{"/api/v2/outbound/é", false},
		{"/" + strings.Repeat("a", 2048), false},
	}
	for _, tt := range tests {
		err := ValidateAPIRequestPath(tt.path, prefixes)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateAPIRequestPath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
		}
		if err != nil {
			if _, isInvalid := errors.AsType[*InvalidRequestError](err); !isInvalid {
				t.Errorf("ValidateAPIRequestPath(%q) = %T, want *InvalidRequestError", tt.path, err)
			}
		}
	}
	if err := ValidateAPIRequestPath("/api/v2/outbound/x", nil); err != nil {
		t.Errorf("nil prefixes mean the defaults: %v", err)
	}
}

func FuzzValidateAPIRequestPath(f *testing.F) {
	for _, s := range []string{
		"/api/v2/outbound/campaigns", "/api/v2/outbound/", "/api/v2/outbound/../users",
		"/api/v2/outbound/%2e%2e/x", "/api/v2/outbound/%252e", "//host/api/v2/outbound/x",
		"https://h/api/v2/outbound/x", "/api/v2/outbound/x\\y", "/api/v2/outbound/a%20b",
		"/api/v2/routing/predictors/p", "/api/v2/outbound/x/./y", "/api/v2/outbound/x?q",
	} {
		f.Add(s)
	}
	prefixes := []string{"/api/v2/outbound/", "/api/v2/routing/predictors"}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidateAPIRequestPath(p, prefixes) != nil {
			return
		}
		if !strings.HasPrefix(p, "/api/v2/outbound/") && p != "/api/v2/routing/predictors" && !strings.HasPrefix(p, "/api/v2/routing/predictors/") {
			t.Fatalf("accepted %q outside the allowed prefixes", p)
		}
		lower := strings.ToLower(p)
		for _, bad := range []string{"..", "%2e", "%2f", "%5c", "%25", "\\", "://", "?", "#"} {
			if strings.Contains(lower, bad) {
				t.Fatalf("accepted %q containing %q", p, bad)
			}
		}
		u, err := url.Parse(p)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
			t.Fatalf("accepted %q: url.Parse = %+v, %v", p, u, err)
		}
		if path.Clean(p) != p || path.Clean(u.Path) != u.Path {
			t.Fatalf("accepted unclean %q (Clean = %q, decoded %q)", p, path.Clean(p), u.Path)
		}
		for i := 0; i < len(u.Path); i++ {
			if c := u.Path[i]; c < 0x20 || c == 0x7f || c == '\\' {
				t.Fatalf("accepted %q decoding to control or backslash %q", p, u.Path)
			}
		}
		// Whatever a server decodes, it stays under the prefix.
		if !pathAllowed(u.Path, prefixes) {
			t.Fatalf("accepted %q whose decoded path %q leaves the prefixes", p, u.Path)
		}
	})
}
