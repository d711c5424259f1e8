package dispatcher_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/platform"
)

func TestDecodeJob(t *testing.T) {
	deadline := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		in   string
		want dispatcher.Job
		err  string // "" = ok
	}{
		{name: "full", in: `{"id":"c0a8-42-7","tenant":"org_1","op":"campaign.start","params":{"campaign_id":"c1"},"deadline":"2026-12-01T10:00:00Z"}`,
			want: dispatcher.Job{ID: "c0a8-42-7", Tenant: "org_1", Op: "campaign.start", Params: json.RawMessage(`{"campaign_id":"c1"}`), Deadline: &deadline}},
		{name: "minimal", in: `{"id":"1","op":"campaign.get"}`, want: dispatcher.Job{ID: "1", Op: "campaign.get"}},
		{name: "whitespace around", in: " \n{\"id\":\"1\",\"op\":\"x\"}\n ", want: dispatcher.Job{ID: "1", Op: "x"}},
		{name: "unknown field", in: `{"id":"1","op":"campaign.get","tenantt":"x"}`, err: `unknown field "tenantt"`},
		{name: "trailing data", in: `{"id":"1","op":"x"} {}`, err: "data after the job object"},
		{name: "trailing garbage", in: `{"id":"1","op":"x"}x`, err: "data after the job object"},
		{name: "not an object", in: `["id"]`, err: "malformed JSON"},
		{name: "empty", in: ``, err: "malformed JSON"},
		{name: "null", in: `null`, want: dispatcher.Job{}},
		{name: "wrong type", in: `{"id":1,"op":"x"}`, err: "malformed JSON"},
		{name: "bad deadline", in: `{"id":"1","op":"x","deadline":"tomorrow"}`, err: "malformed JSON"},
		{name: "too large", in: `{"id":"1","op":"x","params":"` + strings.Repeat("a", dispatcher.MaxJobBytes) + `"}`, err: "larger than the 512000 byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dispatcher.DecodeJob([]byte(tc.in))
			if tc.err != "" {
				var ije *dispatcher.InvalidJobError
				if !errors.As(err, &ije) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("DecodeJob = %v, want *InvalidJobError containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tc.want)
			if string(g) != string(w) {
				t.Fatalf("got %s, want %s", g, w)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	params := json.RawMessage(`{"campaign_id":"c1"}`)
	for _, tc := range []struct {
		name          string
		job           dispatcher.Job
		subjectTenant string
		err           string
	}{
		{"ok with tenant", dispatcher.Job{ID: "j1", Tenant: "org_1", Op: "campaign.start", Params: params}, "", ""},
		{"ok from subject", dispatcher.Job{ID: "j1", Op: "campaign.start", Params: params}, "org_1", ""},
		{"ok matching", dispatcher.Job{ID: "a.b=c_d-e", Tenant: "org_1", Op: "campaign.start", Params: params}, "org_1", ""},
		{"ok 128", dispatcher.Job{ID: strings.Repeat("x", 128), Tenant: "t", Op: "campaign.start", Params: params}, "", ""},
		{"no id", dispatcher.Job{Tenant: "t", Op: "campaign.start", Params: params}, "", "id is required"},
		{"id too long", dispatcher.Job{ID: strings.Repeat("x", 129), Tenant: "t", Op: "campaign.start", Params: params}, "", "want 1-128"},
		{"id leading dot", dispatcher.Job{ID: ".a", Tenant: "t", Op: "campaign.start", Params: params}, "", "want 1-128"},
		{"id trailing dot", dispatcher.Job{ID: "a.", Tenant: "t", Op: "campaign.start", Params: params}, "", "want 1-128"},
		{"id double dot", dispatcher.Job{ID: "a..b", Tenant: "t", Op: "campaign.start", Params: params}, "", "no two dots in a row"},
		{"id space", dispatcher.Job{ID: "a b", Tenant: "t", Op: "campaign.start", Params: params}, "", "want 1-128"},
		{"id wildcard", dispatcher.Job{ID: "a*", Tenant: "t", Op: "campaign.start", Params: params}, "", "want 1-128"},
		{"no tenant", dispatcher.Job{ID: "j", Op: "campaign.start", Params: params}, "", "tenant is required"},
		{"bad tenant", dispatcher.Job{ID: "j", Tenant: "org.1", Op: "campaign.start", Params: params}, "", `tenant "org.1"`},
		{"tenant mismatch", dispatcher.Job{ID: "j", Tenant: "org_2", Op: "campaign.start", Params: params}, "org_1",
			`job names tenant "org_2" but was published for tenant "org_1"`},
		{"no op", dispatcher.Job{ID: "j", Tenant: "t", Params: params}, "", "op is required"},
		{"unknown op", dispatcher.Job{ID: "j", Tenant: "t", Op: "campaign.delete", Params: params}, "", `unknown op "campaign.delete"`},
		{"bad params", dispatcher.Job{ID: "j", Tenant: "t", Op: "campaign.start", Params: json.RawMessage(`{}`)}, "", "campaign.start params: "},
		{"no params", dispatcher.Job{ID: "j", Tenant: "t", Op: "campaign.start"}, "", "campaign.start params: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.job.Validate(tc.subjectTenant)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ije *dispatcher.InvalidJobError
			if !errors.As(err, &ije) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate = %v, want *InvalidJobError containing %q", err, tc.err)
			}
		})
	}
}

func TestValidateTenantJob(t *testing.T) {
	j, err := dispatcher.ValidateTenantJob("org_1", []byte(`{"id":"j1","op":"campaign.start","params":{"campaign_id":"c"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if j.Tenant != "org_1" || j.ID != "j1" || j.Op != "campaign.start" {
		t.Fatalf("job = %+v", j)
	}
	for _, tc := range []struct{ tenant, body, err string }{
		{"org_1", `{"id":"j1","tenant":"org_2","op":"campaign.start","params":{"campaign_id":"c"}}`, "but was published for tenant"},
		{"org_1", `{"id":"j1","op":"campaign.start","params":{"campaign_id":"c"},"x":1}`, "unknown field"},
		{"org_1", `{"id":"j1","op":"nope"}`, "unknown op"},
		{"", `{"id":"j1","tenant":"org_1","op":"campaign.start","params":{"campaign_id":"c"}}`, "tenant is required"},
		{"org.1", `{"id":"j1","op":"campaign.start","params":{"campaign_id":"c"}}`, `tenant "org.1"`},
	} {
		_, err := dispatcher.ValidateTenantJob(tc.tenant, []byte(tc.body))
		var ije *dispatcher.InvalidJobError
		if !errors.As(err, &ije) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ValidateTenantJob(%q, %s) = %v, want %q", tc.tenant, tc.body, err, tc.err)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add("org_1", []byte(`{"id":"c0a8-42-7","tenant":"org_1","op":"campaign.start","params":{"campaign_id":"c1"},"deadline":"2026-12-01T10:00:00Z"}`))
	f.Add("org_2", []byte(`{"id":"a.b","op":"contacts.add","params":{"contact_list_id":"l","contacts":[{"data":{"a":"b"}}]}}`))
	f.Add("t", []byte(`{"id":"x","op":"api.request","params":{"method":"GET","path":"/api/v2/outbound/campaigns"}}`))
	f.Add("t", []byte(`{"id":"..","op":"campaign.get","params":{"campaign_id":"c"}}`))
	f.Add("", []byte(`null`))
	f.Fuzz(func(t *testing.T, tenant string, data []byte) {
		j, err := dispatcher.DecodeJob(data)
		if err != nil {
			var ije *dispatcher.InvalidJobError
			if !errors.As(err, &ije) {
				t.Fatalf("DecodeJob error %T is not *InvalidJobError", err)
			}
			return
		}
		j2, err := dispatcher.ValidateTenantJob(tenant, data)
		if err != nil {
			var ije *dispatcher.InvalidJobError
			if !errors.As(err, &ije) {
				t.Fatalf("ValidateTenantJob error %T is not *InvalidJobError", err)
			}
			return
		}
		// Accepted: everything a worker relies on holds.
		if !dispatcher.ValidTenantID(j2.Tenant) || j2.Tenant != tenant || (j.Tenant != "" && j.Tenant != tenant) {
			t.Fatalf("accepted tenant %q for subject tenant %q", j2.Tenant, tenant)
		}
		if j2.ID == "" || len(j2.ID) > 128 || strings.Contains(j2.ID, "..") || strings.HasPrefix(j2.ID, ".") || strings.HasSuffix(j2.ID, ".") ||
			strings.ContainsAny(j2.ID, " *>:/\x00") {
			t.Fatalf("accepted id %q", j2.ID)
		}
		if !platform.KnownOp(j2.Op) {
			t.Fatalf("accepted op %q", j2.Op)
		}
		if err := platform.ValidateParams(j2.Op, j2.Params); err != nil {
			t.Fatalf("accepted params the platform rejects: %v", err)
		}
		// It survives a round trip through the Publisher's encoding.
		enc, err := json.Marshal(j2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dispatcher.ValidateTenantJob(tenant, enc); err != nil && len(enc) <= dispatcher.MaxJobBytes {
			t.Fatalf("re-encoded job rejected: %v\n%s", err, enc)
		}
	})
}
