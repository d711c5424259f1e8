package platformtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// outboundHarness preloads org_1 with campaign c1 (contact list cl1) and
// returns a token of client_org1 (org_1) and one of client_org2 (org_2).
func outboundHarness(t *testing.T, cfg Config) (h *harness, tok, other string) {
	t.Helper()
	cfg.Campaigns = map[string][]Campaign{"org_1": {{
		ID: "c1", Name: "Spring sale", ContactList: Ref{ID: "cl1", Name: "Spring list"},
		DialingMode: "predictive", Queue: &Ref{ID: "q1"},
		PhoneColumns: []PhoneColumn{{ColumnName: "phone", Type: "cell"}},
	}}}
	h = newHarness(t, cfg)
	return h, h.token("client_org1", "secret1"), h.token("client_org2", "secret2")
}

func getCampaign(t *testing.T, h *harness, tok, id string) Campaign {
	t.Helper()
	r := h.api("GET", "/api/v2/outbound/campaigns/"+id, tok, nil)
	wantStatus(t, r, http.StatusOK)
	var c Campaign
	r.json(t, &c)
	return c
}

func TestGetCampaign(t *testing.T) {
	h, tok, other := outboundHarness(t, Config{})
	r := h.api("GET", "/api/v2/outbound/campaigns/c1", tok, nil)
	wantStatus(t, r, http.StatusOK)
	var raw map[string]any
	r.json(t, &raw)
	for _, k := range []string{"id", "name", "version", "campaignStatus", "contactList", "dialingMode", "phoneColumns", "dateCreated", "dateModified", "selfUri"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("campaign JSON lacks %q: %s", k, r.body)
		}
	}
	var c Campaign
	r.json(t, &c)
	if c.ID != "c1" || c.Name != "Spring sale" || c.Version != 1 || c.CampaignStatus != CampaignOff ||
		c.ContactList.ID != "cl1" || c.DialingMode != "predictive" || c.Queue == nil || c.Queue.ID != "q1" ||
		c.SelfURI != "/api/v2/outbound/campaigns/c1" || !c.DateCreated.Equal(h.clock.Now()) {
		t.Fatalf("campaign %+v", c)
	}

	r = h.api("GET", "/api/v2/outbound/campaigns/c2", tok, nil)
	wantStatus(t, r, http.StatusNotFound)
	if e := r.apiErr(t); e.Code != "not.found" {
		t.Fatalf("code %q", e.Code)
	}
	// Org isolation: org_2's token does not see org_1's campaign.
	wantStatus(t, h.api("GET", "/api/v2/outbound/campaigns/c1", other, nil), http.StatusNotFound)
}

// putBody is a GET result turned into a PUT body with changes.
func putBody(t *testing.T, c Campaign, change func(m map[string]any)) []byte {
	t.Helper()
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	data, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestPutCampaign(t *testing.T) {
	h, tok, _ := outboundHarness(t, Config{StopDelay: 5 * time.Second})
	const path = "/api/v2/outbound/campaigns/c1"
	c := getCampaign(t, h, tok, "c1")
	h.clock.Advance(time.Minute)

	r := h.api("PUT", path+"?useMaxCallsPerAgentDecimal=true", tok, putBody(t, c, func(m map[string]any) {
		m["campaignStatus"] = "on"
		m["name"] = "Spring sale 2"
	}))
	wantStatus(t, r, http.StatusOK)
	if reqs := h.srv.Requests(RequestFilter{Method: "PUT"}); len(reqs) != 1 || reqs[0].Query != "useMaxCallsPerAgentDecimal=true" {
		t.Fatalf("recorded %+v", reqs)
	}
	var got Campaign
	r.json(t, &got)
	if got.Version != 2 || got.CampaignStatus != CampaignOn || got.Name != "Spring sale 2" || !got.DateModified.Equal(h.clock.Now()) {
		t.Fatalf("after PUT: %+v", got)
	}
	if sc, _ := h.srv.Campaign("org_1", "c1"); sc.Version != 2 || sc.CampaignStatus != CampaignOn {
		t.Fatalf("simulator state %+v", sc)
	}

	// The old version is now stale: 409 conflict, and nothing changes.
	r = h.api("PUT", path, tok, putBody(t, c, func(m map[string]any) { m["campaignStatus"] = "off" }))
	wantStatus(t, r, http.StatusConflict)
	if e := r.apiErr(t); e.Code != "conflict" {
		t.Fatalf("409 code %q", e.Code)
	}
	r = h.api("PUT", path, tok, putBody(t, got, func(m map[string]any) {
		delete(m, "version")
		m["campaignStatus"] = "off"
	}))
	wantStatus(t, r, http.StatusConflict)
	if sc, _ := h.srv.Campaign("org_1", "c1"); sc.Version != 2 || sc.CampaignStatus != CampaignOn {
		t.Fatalf("a refused PUT changed the campaign: %+v", sc)
	}

	// Turning an "on" campaign off goes through "stopping" for StopDelay.
	r = h.api("PUT", path, tok, putBody(t, got, func(m map[string]any) { m["campaignStatus"] = "off" }))
	wantStatus(t, r, http.StatusOK)
	r.json(t, &got)
	if got.CampaignStatus != CampaignStopping || got.Version != 3 {
		t.Fatalf("after PUT off: %+v", got)
	}
	h.clock.Advance(5*time.Second - time.Nanosecond)
	if c := getCampaign(t, h, tok, "c1"); c.CampaignStatus != CampaignStopping {
		t.Fatalf("stopping ended before StopDelay: %+v", c)
	}
	h.clock.Advance(time.Nanosecond)
	if c := getCampaign(t, h, tok, "c1"); c.CampaignStatus != CampaignOff || c.Version != 3 {
		t.Fatalf("StopDelay after PUT off: %+v", c)
	}
}

func TestPutCampaignInvalid(t *testing.T) {
	h, tok, _ := outboundHarness(t, Config{})
	const path = "/api/v2/outbound/campaigns/c1"
	c := getCampaign(t, h, tok, "c1")
	set := func(k string, v any) []byte {
		return putBody(t, c, func(m map[string]any) {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		})
	}
	cases := []struct {
		name  string
		body  []byte
		query string
	}{
		{"malformed JSON", []byte(`{"version":1,`), ""},
		{"array", []byte(`[]`), ""},
		{"status complete", set("campaignStatus", "complete"), ""},
		{"status bogus", set("campaignStatus", "running"), ""},
		{"status missing", set("campaignStatus", nil), ""},
		{"name missing", set("name", nil), ""},
		{"contact list missing", set("contactList", nil), ""},
		{"dialing mode unknown", set("dialingMode", "telepathic"), ""},
		{"id mismatch", set("id", "c9"), ""},
		{"version not an integer", set("version", 1.5), ""},
		{"unknown contact list", set("contactList", map[string]any{"id": "nope"}), ""},
		{"off when off", set("campaignStatus", "off"), ""},
		{"useMaxCallsPerAgentDecimal not a bool", set("campaignStatus", "on"), "?useMaxCallsPerAgentDecimal=yes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.api("PUT", path+tc.query, tok, tc.body)
			wantStatus(t, r, http.StatusBadRequest)
			if e := r.apiErr(t); e.Code != "bad.request" {
				t.Fatalf("code %q", e.Code)
			}
		})
	}
	if sc, _ := h.srv.Campaign("org_1", "c1"); sc.Version != 1 || sc.CampaignStatus != CampaignOff {
		t.Fatalf("invalid PUTs changed the campaign: %+v", sc)
	}
	wantStatus(t, h.api("PUT", "/api/v2/outbound/campaigns/c2", tok, set("id", "c2")), http.StatusNotFound)
}

func TestStartStop(t *testing.T) {
	h, tok, _ := outboundHarness(t, Config{})
	start, stop := "/api/v2/outbound/campaigns/c1/start", "/api/v2/outbound/campaigns/c1/stop"

	r := h.api("POST", start, tok, nil)
	wantStatus(t, r, http.StatusNoContent)
	today(t, r)
	if len(r.body) != 0 || r.header.Get("Content-Type") != "" {
		t.Errorf("start answered a body: %q (Content-Type %q)", r.body, r.header.Get("Content-Type"))
	}
	if c := getCampaign(t, h, tok, "c1"); c.CampaignStatus != CampaignOn || c.Version != 2 {
		t.Fatalf("after start: %+v", c)
	}
	// Starting an "on" campaign is refused, naming both statuses.
	r = h.api("POST", start, tok, nil)
	wantStatus(t, r, http.StatusBadRequest)
	if e := r.apiErr(t); e.Code != "bad.request" || !strings.Contains(e.Message, "from on to on") {
		t.Fatalf("start when on: %s", r.body)
	}
	if c := getCampaign(t, h, tok, "c1"); c.Version != 2 {
		t.Fatalf("a refused start bumped the version: %+v", c)
	}

	r = h.api("POST", stop, tok, nil)
	wantStatus(t, r, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("stop answered a body: %s", r.body)
	}
	if c := getCampaign(t, h, tok, "c1"); c.CampaignStatus != CampaignStopping || c.Version != 3 {
		t.Fatalf("after stop: %+v", c)
	}
	// Stopping is asynchronous: DefaultStopDelay on the simulator's clock.
	h.clock.Advance(DefaultStopDelay - time.Millisecond)
	if c := getCampaign(t, h, tok, "c1"); c.CampaignStatus != CampaignStopping {
		t.Fatalf("stopping ended early: %+v", c)
	}
	r = h.api("POST", stop, tok, nil) // stopping → off: refused
	wantStatus(t, r, http.StatusBadRequest)
	if e := r.apiErr(t); !strings.Contains(e.Message, "from stopping to off") {
		t.Fatalf("stop when stopping: %s", r.body)
	}
	h.clock.Advance(time.Millisecond)
	if c := getCampaign(t, h, tok, "c1"); c.CampaignStatus != CampaignOff || c.Version != 3 {
		t.Fatalf("DefaultStopDelay after stop: %+v", c)
	}
	wantStatus(t, h.api("POST", stop, tok, nil), http.StatusBadRequest)
	if c := getCampaign(t, h, tok, "c1"); c.Version != 3 {
		t.Fatalf("stopping an off campaign bumped its version: %+v", c)
	}

	wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/c2/start", tok, nil), http.StatusNotFound)
	wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/c2/stop", tok, nil), http.StatusNotFound)
	r = h.api("GET", start, tok, nil)
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if r.header.Get("Allow") != "POST" {
		t.Errorf("Allow %q", r.header.Get("Allow"))
	}
}

func TestStopDelay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		want  time.Duration // stopping for exactly this long
	}{
		{"default", 0, DefaultStopDelay},
		{"nearly immediate", time.Nanosecond, time.Nanosecond},
		{"long", 3 * time.Minute, 3 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, tok, _ := outboundHarness(t, Config{StopDelay: tc.delay})
			h.srv.AddCampaign("org_1", Campaign{ID: "preloaded", CampaignStatus: CampaignForcedStopping})
			wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/c1/start", tok, nil), http.StatusNoContent)
			wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/c1/stop", tok, nil), http.StatusNoContent)
			h.clock.Advance(tc.want - time.Nanosecond)
			if c := getCampaign(t, h, tok, "c1"); c.CampaignStatus != CampaignStopping {
				t.Fatalf("%s after stop: %s", tc.want-time.Nanosecond, c.CampaignStatus)
			}
			if c := getCampaign(t, h, tok, "preloaded"); c.CampaignStatus != CampaignForcedStopping {
				t.Fatalf("preloaded forced_stopping: %s", c.CampaignStatus)
			}
			h.clock.Advance(time.Nanosecond)
			if c := getCampaign(t, h, tok, "c1"); c.CampaignStatus != CampaignOff {
				t.Fatalf("%s after stop: %s", tc.want, c.CampaignStatus)
			}
			if c := getCampaign(t, h, tok, "preloaded"); c.CampaignStatus != CampaignForcedOff {
				t.Fatalf("preloaded forced_stopping after the delay: %s", c.CampaignStatus)
			}
		})
	}
}

// Every status × every way to change it, strict (default) and lenient.
func TestStatusTransitions(t *testing.T) {
	statuses := []string{CampaignOn, CampaignStopping, CampaignOff, CampaignComplete, CampaignInvalid, CampaignForcedOff, CampaignForcedStopping}
	startable := map[string]bool{CampaignOff: true, CampaignComplete: true, CampaignInvalid: true, CampaignForcedOff: true}
	type op struct {
		name   string
		to     string
		put    bool // PUT campaignStatus to, else POST start/stop
		status int  // success status
	}
	ops := []op{
		{"PUT on", CampaignOn, true, http.StatusOK},
		{"PUT off", CampaignOff, true, http.StatusOK},
		{"start", CampaignOn, false, http.StatusNoContent},
		{"stop", CampaignOff, false, http.StatusNoContent},
	}
	for _, lenient := range []bool{false, true} {
		for _, from := range statuses {
			for _, o := range ops {
				allowed := (o.to == CampaignOn && startable[from]) || (o.to == CampaignOff && from == CampaignOn)
				// Lenient: "on" from anywhere; "off" stops an "on"
				// campaign and leaves any other as it is.
				want := from
				switch {
				case o.to == CampaignOn && (allowed || lenient):
					want = CampaignOn
				case o.to == CampaignOff && from == CampaignOn:
					want = CampaignStopping
				}
				name := fmt.Sprintf("strict/%s/%s", from, o.name)
				if lenient {
					name = fmt.Sprintf("lenient/%s/%s", from, o.name)
				}
				t.Run(name, func(t *testing.T) {
					h := newHarness(t, Config{StopDelay: time.Hour, LenientStatusTransitions: lenient})
					tok := h.token("client_org1", "secret1")
					h.srv.AddCampaign("org_1", Campaign{ID: "c1", CampaignStatus: from})
					var r response
					if o.put {
						c, _ := h.srv.Campaign("org_1", "c1")
						r = h.api("PUT", campaignPath+"?useMaxCallsPerAgentDecimal=true", tok,
							putBody(t, c, func(m map[string]any) { m["campaignStatus"] = o.to }))
					} else {
						action := "/start"
						if o.to == CampaignOff {
							action = "/stop"
						}
						r = h.api("POST", campaignPath+action, tok, nil)
					}
					if !allowed && !lenient {
						wantStatus(t, r, http.StatusBadRequest)
						e := r.apiErr(t)
						if msg := fmt.Sprintf("from %s to %s", from, o.to); e.Code != "bad.request" || !strings.Contains(e.Message, msg) {
							t.Fatalf("refusal %s, want code bad.request and a message with %q", r.body, msg)
						}
					} else {
						wantStatus(t, r, o.status)
					}
					c, _ := h.srv.Campaign("org_1", "c1")
					if c.CampaignStatus != want {
						t.Fatalf("status %s, want %s", c.CampaignStatus, want)
					}
					// A PUT bumps the version when it is accepted; start and
					// stop when they change the status.
					bumped := (o.put && (allowed || lenient)) || (!o.put && want != from)
					if wantVersion := map[bool]int{false: 1, true: 2}[bumped]; c.Version != wantVersion {
						t.Fatalf("version %d, want %d", c.Version, wantVersion)
					}
				})
			}
		}
	}
}

// addContacts posts contacts to list id and returns the stored ones.
func addContacts(t *testing.T, h *harness, tok, list string, contacts []map[string]any) []Contact {
	t.Helper()
	r := h.api("POST", "/api/v2/outbound/contactlists/"+list+"/contacts", tok, contacts)
	wantStatus(t, r, http.StatusOK)
	var out []Contact
	r.json(t, &out)
	return out
}

func TestProgressAndStats(t *testing.T) {
	h, tok, _ := outboundHarness(t, Config{})
	var cs []map[string]any
	for i := range 5 {
		cs = append(cs, map[string]any{"data": map[string]any{"phone": fmt.Sprintf("+1555000%d", i)}, "callable": i != 4})
	}
	addContacts(t, h, tok, "cl1", cs)

	progress := func() progress {
		t.Helper()
		r := h.api("GET", "/api/v2/outbound/campaigns/c1/progress", tok, nil)
		wantStatus(t, r, http.StatusOK)
		var p progress
		r.json(t, &p)
		return p
	}
	stats := func() stats {
		t.Helper()
		r := h.api("GET", "/api/v2/outbound/campaigns/c1/stats", tok, nil)
		wantStatus(t, r, http.StatusOK)
		var raw map[string]any
		r.json(t, &raw)
		for _, k := range []string{"contactRate", "idleAgents", "effectiveIdleAgents", "adjustedCallsPerAgent", "outstandingCalls", "scheduledCalls"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("stats lack %q: %s", k, r.body)
			}
		}
		var s stats
		r.json(t, &s)
		return s
	}

	if p := progress(); p.NumberOfContactsCalled != 0 || p.TotalNumberOfContacts != 5 || p.Percentage != 0 ||
		p.Campaign.ID != "c1" || p.ContactList.ID != "cl1" {
		t.Fatalf("progress before start %+v", p)
	}
	h.clock.Advance(time.Hour) // an off campaign does not dial
	if p := progress(); p.NumberOfContactsCalled != 0 {
		t.Fatalf("an off campaign dialed: %+v", p)
	}
	wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/c1/start", tok, nil), http.StatusNoContent)
	h.clock.Advance(2500 * time.Millisecond)
	if p := progress(); p.NumberOfContactsCalled != 2 || p.Percentage != 40 {
		t.Fatalf("progress 2.5 s after start %+v", p)
	}
	if s := stats(); s.ContactRate.Attempts != 2 || s.ContactRate.Connects != 1 || s.ContactRate.ConnectRatio != 0.5 ||
		s.IdleAgents != 2 || s.OutstandingCalls != 1 {
		t.Fatalf("stats while dialing %+v", s)
	}
	h.clock.Advance(time.Minute) // only the 4 callable contacts are dialed
	if p := progress(); p.NumberOfContactsCalled != 4 || p.Percentage != 80 {
		t.Fatalf("progress after a minute %+v", p)
	}
	if s := stats(); s.ContactRate.Attempts != 4 || s.OutstandingCalls != 0 {
		t.Fatalf("stats after a minute %+v", s)
	}
	wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/c1/stop", tok, nil), http.StatusNoContent)
	if s := stats(); s.IdleAgents != 0 || s.ContactRate.Attempts != 4 {
		t.Fatalf("stats after stop %+v", s)
	}

	wantStatus(t, h.api("GET", "/api/v2/outbound/campaigns/c2/progress", tok, nil), http.StatusNotFound)
	wantStatus(t, h.api("GET", "/api/v2/outbound/campaigns/c2/stats", tok, nil), http.StatusNotFound)
	wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/c1/stats", tok, nil), http.StatusMethodNotAllowed)
}

func TestProgressMany(t *testing.T) {
	h, tok, _ := outboundHarness(t, Config{})
	h.srv.AddCampaign("org_1", Campaign{ID: "c2"})
	const path = "/api/v2/outbound/campaigns/progress"
	r := h.api("POST", path, tok, []string{"c2", "c1"})
	wantStatus(t, r, http.StatusOK)
	var ps []progress
	r.json(t, &ps)
	if len(ps) != 2 || ps[0].Campaign.ID != "c2" || ps[1].Campaign.ID != "c1" || ps[1].ContactList.ID != "cl1" {
		t.Fatalf("progress %+v", ps)
	}
	wantStatus(t, h.api("POST", path, tok, []string{"c1", "c3"}), http.StatusNotFound)
	for _, body := range []string{`["c1"`, `{"ids":["c1"]}`, `[1,2]`, `[]`, `[""]`} {
		r := h.api("POST", path, tok, []byte(body))
		wantStatus(t, r, http.StatusBadRequest)
		r.apiErr(t)
	}
	wantStatus(t, h.api("GET", path, tok, nil), http.StatusMethodNotAllowed)
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestAddContacts(t *testing.T) {
	h, tok, other := outboundHarness(t, Config{})
	const path = "/api/v2/outbound/contactlists/cl1/contacts"
	r := h.api("POST", path+"?priority=true&clearSystemData=false&doNotQueue=true", tok, []map[string]any{
		{"id": "k1", "contactListId": "cl1", "data": map[string]any{"phone": "+15550001", "name": "Ada"}, "callable": true},
		{"data": map[string]any{"phone": "+15550002"}},
		{"contactListId": "cl1", "data": map[string]any{"phone": "+15550003"}, "callable": false},
	})
	wantStatus(t, r, http.StatusOK)
	var out []Contact
	r.json(t, &out)
	if len(out) != 3 || out[0].ID != "k1" || !uuidRE.MatchString(out[1].ID) || !uuidRE.MatchString(out[2].ID) ||
		out[1].ContactListID != "cl1" || !out[1].Callable || out[2].Callable {
		t.Fatalf("answer %+v", out)
	}
	stored := h.srv.Contacts("org_1", "cl1")
	if len(stored) != 3 || stored[0].ID != "k1" || stored[0].Data["name"] != "Ada" || stored[1].ID != out[1].ID || stored[2].ID != out[2].ID {
		t.Fatalf("stored %+v", stored)
	}
	// A known id replaces the contact in place.
	addContacts(t, h, tok, "cl1", []map[string]any{{"id": "k1", "data": map[string]any{"phone": "+15559999"}, "callable": false}})
	stored = h.srv.Contacts("org_1", "cl1")
	if len(stored) != 3 || stored[0].ID != "k1" || stored[0].Data["phone"] != "+15559999" || stored[0].Callable {
		t.Fatalf("after replacing k1: %+v", stored)
	}
	// Exactly the maximum is fine.
	full := make([]map[string]any, MaxContactsPerRequest)
	for i := range full {
		full[i] = map[string]any{"data": map[string]any{"n": fmt.Sprint(i)}}
	}
	if got := addContacts(t, h, tok, "cl1", full); len(got) != MaxContactsPerRequest {
		t.Fatalf("%d contacts answered", len(got))
	}

	bad := []struct {
		name, query string
		body        any
	}{
		{"too many", "", append(full, map[string]any{"data": map[string]any{}})},
		{"malformed", "", []byte(`[{"data":`)},
		{"object", "", []byte(`{"data":{}}`)},
		{"empty", "", []byte(`[]`)},
		{"null", "", []byte(`null`)},
		{"no data", "", []map[string]any{{"id": "x"}}},
		{"data not an object", "", []byte(`[{"data":"phone"}]`)},
		{"other list", "", []map[string]any{{"contactListId": "cl2", "data": map[string]any{}}}},
		{"priority not a bool", "?priority=maybe", []map[string]any{{"data": map[string]any{}}}},
		{"doNotQueue not a bool", "?doNotQueue=2", []map[string]any{{"data": map[string]any{}}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := h.api("POST", path+tc.query, tok, tc.body)
			wantStatus(t, r, http.StatusBadRequest)
			if e := r.apiErr(t); e.Code != "bad.request" {
				t.Fatalf("code %q", e.Code)
			}
		})
	}
	if n := len(h.srv.Contacts("org_1", "cl1")); n != 3+MaxContactsPerRequest {
		t.Fatalf("%d contacts after refused requests, want %d", n, 3+MaxContactsPerRequest)
	}
	wantStatus(t, h.api("POST", "/api/v2/outbound/contactlists/cl9/contacts", tok, []map[string]any{{"data": map[string]any{}}}), http.StatusNotFound)
	wantStatus(t, h.api("POST", path, other, []map[string]any{{"data": map[string]any{}}}), http.StatusNotFound)
	wantStatus(t, h.api("PUT", path, tok, []map[string]any{{"data": map[string]any{}}}), http.StatusMethodNotAllowed)
}

// Contact data is a map of string to string: any other value is refused
// with the platform's error body naming the contact and the column, and
// nothing of the request is stored.
func TestAddContactsDataMustBeStrings(t *testing.T) {
	h, tok, _ := outboundHarness(t, Config{})
	const path = "/api/v2/outbound/contactlists/cl1/contacts"
	for _, tc := range []struct {
		name, body, want string
	}{
		{"number", `[{"data":{"phone":"1"}},{"data":{"phone":"2","age":42}}]`, `contact 1: the value of data column "age" must be a string, not a number`},
		{"boolean", `[{"data":{"vip":true,"phone":"1"}}]`, `contact 0: the value of data column "vip" must be a string, not a boolean`},
		{"null", `[{"data":{"phone":null}}]`, `contact 0: the value of data column "phone" must be a string, not null`},
		{"object", `[{"data":{"phone":{"n":"1"}}}]`, `contact 0: the value of data column "phone" must be a string, not an object`},
		{"array", `[{"data":{"phone":["1"]}}]`, `contact 0: the value of data column "phone" must be a string, not an array`},
		{"first bad column by name", `[{"data":{"z":1,"a":2}}]`, `contact 0: the value of data column "a" must be a string, not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.api("POST", path, tok, []byte(tc.body))
			wantStatus(t, r, http.StatusBadRequest)
			if e := r.apiErr(t); e.Code != "bad.request" || e.Message != tc.want {
				t.Fatalf("error %s, want message %q", r.body, tc.want)
			}
		})
	}
	if n := len(h.srv.Contacts("org_1", "cl1")); n != 0 {
		t.Fatalf("%d contacts stored from refused requests", n)
	}
	// Strings, empty ones included, are fine.
	got := addContacts(t, h, tok, "cl1", []map[string]any{{"data": map[string]any{"phone": "+1555", "note": ""}}})
	if len(got) != 1 || got[0].Data["phone"] != "+1555" || got[0].Data["note"] != "" || len(got[0].Data) != 2 {
		t.Fatalf("stored %+v", got)
	}
}

func TestBodyTooLarge(t *testing.T) {
	h, tok, _ := outboundHarness(t, Config{Limit: 10})
	big := []map[string]any{{"data": map[string]any{"blob": strings.Repeat("x", MaxBodyBytes)}}}
	r := h.api("POST", "/api/v2/outbound/contactlists/cl1/contacts", tok, big)
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
	if e := r.apiErr(t); e.Code != "request.entity.too.large" {
		t.Fatalf("code %q", e.Code)
	}
	wantCounted(t, h, tok, 1) // an admitted request, counted
	// Exactly MaxBodyBytes is accepted: pad a valid body with spaces.
	body := []byte(`[{"data":{"a":"b"}}]`)
	body = append(body, []byte(strings.Repeat(" ", MaxBodyBytes-len(body)))...)
	wantStatus(t, h.api("POST", "/api/v2/outbound/contactlists/cl1/contacts", tok, body), http.StatusOK)
	if n := len(h.srv.Contacts("org_1", "cl1")); n != 1 {
		t.Fatalf("%d contacts, want 1", n)
	}
}

func TestRemoveContacts(t *testing.T) {
	h, tok, _ := outboundHarness(t, Config{})
	addContacts(t, h, tok, "cl1", []map[string]any{
		{"id": "a", "data": map[string]any{}}, {"id": "b", "data": map[string]any{}}, {"id": "c", "data": map[string]any{}},
	})
	const path = "/api/v2/outbound/contactlists/cl1/contacts"
	r := h.api("DELETE", path+"?contactIds=a,zz&contactIds=b", tok, nil)
	wantStatus(t, r, http.StatusOK)
	if got := h.srv.Contacts("org_1", "cl1"); len(got) != 1 || got[0].ID != "c" {
		t.Fatalf("after delete: %+v", got)
	}
	wantStatus(t, h.api("DELETE", path, tok, nil), http.StatusBadRequest)
	wantStatus(t, h.api("DELETE", path+"?contactIds=", tok, nil), http.StatusBadRequest)
	wantStatus(t, h.api("DELETE", "/api/v2/outbound/contactlists/cl9/contacts?contactIds=c", tok, nil), http.StatusNotFound)
	if got := h.srv.Contacts("org_1", "cl1"); len(got) != 1 {
		t.Fatalf("refused deletes removed contacts: %+v", got)
	}
}

func TestAutoCreate(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true})
	tok := h.token("client_org1", "secret1")
	c := getCampaign(t, h, tok, "fresh")
	if c.CampaignStatus != CampaignOff || c.Version != 1 || c.ContactList.ID != "fresh" || c.Name != "fresh" {
		t.Fatalf("auto-created campaign %+v", c)
	}
	addContacts(t, h, tok, "fresh", []map[string]any{{"data": map[string]any{"phone": "1"}}})
	addContacts(t, h, tok, "elsewhere", []map[string]any{{"data": map[string]any{"phone": "2"}}})
	wantStatus(t, h.api("POST", "/api/v2/outbound/campaigns/other/start", tok, nil), http.StatusNoContent)
	if c, ok := h.srv.Campaign("org_1", "other"); !ok || c.CampaignStatus != CampaignOn {
		t.Fatalf("auto-created by start: %+v %v", c, ok)
	}
	r := h.api("POST", "/api/v2/outbound/campaigns/progress", tok, []string{"fresh", "new2"})
	wantStatus(t, r, http.StatusOK)
	var ps []progress
	r.json(t, &ps)
	if len(ps) != 2 || ps[0].TotalNumberOfContacts != 1 {
		t.Fatalf("progress %+v", ps)
	}
	if len(h.srv.Contacts("org_1", "elsewhere")) != 1 {
		t.Fatal("contact list not auto-created")
	}
}

func TestUnknownPaths(t *testing.T) {
	h := newHarness(t, Config{AutoCreate: true})
	tok := h.token("client_org1", "secret1")
	for _, p := range []string{
		"/api/v2/outbound/campaigns/",
		"/api/v2/outbound/campaigns/c1/",
		"/api/v2/outbound/campaigns/c1/bogus",
		"/api/v2/outbound/campaigns/c1/start/now",
		"/api/v2/outbound/contactlists/cl1",
		"/api/v2/outbound/contactlists/cl1/contacts/x",
		"/api/v2/predictiverouting/outboundcampaigns",
		"/api/v2/users/me",
	} {
		r := h.api("GET", p, tok, nil)
		if r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.status)
			continue
		}
		if e := r.apiErr(t); e.Code != "not.found" {
			t.Errorf("GET %s: code %q", p, e.Code)
		}
	}
	// Outside /api/ no token is needed to learn there is nothing.
	wantStatus(t, h.api("GET", "/index.html", "", nil), http.StatusNotFound)
}

func TestContactIDsFollowSeed(t *testing.T) {
	ids := func(seed int64) []string {
		h := newHarness(t, Config{AutoCreate: true, Seed: seed})
		tok := h.token("client_org1", "secret1")
		var out []string
		for _, c := range addContacts(t, h, tok, "l", []map[string]any{{"data": map[string]any{}}, {"data": map[string]any{}}}) {
			out = append(out, c.ID)
		}
		return out
	}
	a, b, c := ids(7), ids(7), ids(8)
	if strings.Join(a, ",") != strings.Join(b, ",") || a[0] == a[1] || a[0] == c[0] {
		t.Fatalf("ids seed 7: %v, seed 7 again: %v, seed 8: %v", a, b, c)
	}
}
