package tenants

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func testTenant() Tenant {
	return Tenant{
		ID: "org_1", ClientID: "client_org1", ClientSecret: NewSecret("hunter2-very-secret"),
		Region: "us-east-1", APIBase: "https://api.mypurecloud.com", TokenURL: "https://login.mypurecloud.com/oauth/token",
		RatePerMinute: 300, Burst: 1, Concurrency: 4, MaxAttempts: 10, QuotaScope: ScopeOrg,
		AllowedPaths: []string{"/api/v2/outbound/"},
	}
}

func TestSecretRedaction(t *testing.T) {
	tn := testTenant()
	const secret = "hunter2-very-secret"
	if tn.ClientSecret.Reveal() != secret {
		t.Fatal("Reveal lost the value")
	}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		outputs = append(outputs, fmt.Sprintf(verb, tn), fmt.Sprintf(verb, &tn), fmt.Sprintf(verb, tn.ClientSecret))
	}
	outputs = append(outputs, fmt.Sprintf("%v", File{Tenants: []Tenant{tn}}), fmt.Sprintf("%+v", &File{Tenants: []Tenant{tn}}))
	j, err := json.Marshal(tn)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	j, err = json.Marshal(map[string]any{"file": File{Tenants: []Tenant{tn}}})
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(j))
	var text, js bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&text, nil), slog.NewJSONHandler(&js, nil)} {
		l := slog.New(h)
		l.Info("tenant", "tenant", tn, "ptr", &tn, "secret", tn.ClientSecret, slog.Group("g", "t", tn))
	}
	outputs = append(outputs, text.String(), js.String())
	for _, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("secret printed: %s", out)
		}
	}
	if !strings.Contains(text.String(), "[redacted]") || !strings.Contains(js.String(), `"[redacted]"`) {
		t.Errorf("secret not shown as [redacted]:\n%s\n%s", text.String(), js.String())
	}
	if NewSecret("").IsZero() != true || tn.ClientSecret.IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"org_1": true, "A-b_9": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "org.1": false, "org 1": false, "org*": false, "org>": false, "ørg": false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestTenantValidate(t *testing.T) {
	if err := testTenant().Validate(); err != nil {
		t.Fatalf("valid tenant: %v", err)
	}
	for _, tc := range []struct {
		mutate func(*Tenant)
		want   string
	}{
		{func(t *Tenant) { t.ID = "a.b" }, "invalid id"},
		{func(t *Tenant) { t.ClientID = "" }, "client id is empty"},
		{func(t *Tenant) { t.ClientSecret = Secret{} }, "client secret is empty"},
		{func(t *Tenant) { t.TokenURL = "" }, "API base and token URL are required"},
		{func(t *Tenant) { t.RatePerMinute = 0 }, "rate per minute 0"},
		{func(t *Tenant) { t.Burst = 0 }, "burst 0"},
		{func(t *Tenant) { t.Concurrency = 0 }, "concurrency 0"},
		{func(t *Tenant) { t.MaxAttempts = 101 }, "max attempts 101"},
		{func(t *Tenant) { t.QuotaScope = "" }, `quota scope ""`},
		{func(t *Tenant) { t.AllowedPaths = nil }, "no allowed paths"},
		{func(t *Tenant) { t.AllowedPaths = []string{"x"} }, `allowed path "x"`},
	} {
		tn := testTenant()
		tc.mutate(&tn)
		err := tn.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}
