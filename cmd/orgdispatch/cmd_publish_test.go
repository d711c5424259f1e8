package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/platform"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// onlyEnv unsets every ORGDISPATCH_* variable for the test, then sets kv.
func onlyEnv(t *testing.T, kv map[string]string) {
	t.Helper()
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		if strings.HasPrefix(k, "ORGDISPATCH_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for k, v := range kv {
		t.Setenv(k, v)
	}
}

func testTenant(id, apiBase string) tenants.Tenant {
	return tenants.Tenant{
		ID:            id,
		ClientID:      "client_" + id,
		ClientSecret:  tenants.NewSecret("secret_" + id),
		APIBase:       apiBase,
		TokenURL:      apiBase + "/oauth/token",
		RatePerMinute: 600,
		Burst:         1,
		Concurrency:   2,
		MaxAttempts:   3,
		QuotaScope:    tenants.ScopeOrg,
		AllowedPaths:  platform.DefaultAllowedPathPrefixes,
	}
}

// provisioned starts a NATS server with the jobs stream and a consumer for
// org_1, and points ORGDISPATCH_NATS_URL at it.
func provisioned(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, _, js := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	names := dispatcher.MustNames("")
	if err := dispatcher.Provision(ctx, js, names, dispatcher.StreamConfig{}, []tenants.Tenant{testTenant("org_1", "http://127.0.0.1:1")}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	onlyEnv(t, map[string]string{"ORGDISPATCH_NATS_URL": srv.ClientURL()})
	return js
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestPublishAcceptedThenDuplicate(t *testing.T) {
	js := provisioned(t)
	args := []string{"publish", "--tenant", "org_1", "--op", "campaign.start", "--id", "job-1", "--params", `{"campaign_id":"cmp-1"}`}

	code, out, errs := runCLI(t, args...)
	if code != 0 || out != "accepted org_1/job-1 seq 1\n" {
		t.Fatalf("first publish: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = runCLI(t, args...)
	if code != 0 || out != "duplicate org_1/job-1 seq 1\n" {
		t.Fatalf("second publish: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	// Exactly one message is queued, on the tenant's subject.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, dispatcher.MustNames("").JobsStream("org_1"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "orgdispatch.jobs.org_1.campaign.start" {
		t.Errorf("subject = %q", m.Subject)
	}
	j, err := dispatcher.DecodeJob(m.Data)
	if err != nil || j.ID != "job-1" || string(j.Params) != `{"campaign_id":"cmp-1"}` {
		t.Errorf("queued job = %+v, %v", j, err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Errorf("stream holds %v messages (err %v), want 1", info.State.Msgs, err)
	}
}

func TestPublishGeneratesIDAndDeadline(t *testing.T) {
	provisioned(t)
	code, out, errs := runCLI(t, "publish", "--tenant", "org_1", "--op", "campaign.get", "--params", `{"campaign_id":"c"}`, "--deadline", "10m")
	if code != 0 || !strings.HasPrefix(out, "accepted org_1/cli-") || !strings.HasSuffix(out, " seq 1\n") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestPublishStdin(t *testing.T) {
	provisioned(t)
	lines := strings.Join([]string{
		`{"id":"a","tenant":"org_1","op":"campaign.start","params":{"campaign_id":"c1"}}`,
		``,
		`{"id":"b","op":"campaign.stop","params":{"campaign_id":"c1"}}`,
		`{"id":"a","tenant":"org_1","op":"campaign.start","params":{"campaign_id":"c1"}}`,
		`{"id":"c","op":"campaign.explode","params":{}}`,
		`{"id":"d","tenant":"org_2","op":"campaign.get","params":{"campaign_id":"c1"}}`,
		`not json`,
	}, "\n")
	stdin = strings.NewReader(lines)
	t.Cleanup(func() { stdin = os.Stdin })

	code, out, errs := runCLI(t, "publish", "--tenant", "org_1", "-")
	want := []string{
		"accepted org_1/a seq 1",
		"accepted org_1/b seq 2",
		"duplicate org_1/a seq 1",
		"failed org_1/c: ",
		"failed line 6: ",
		"failed line 7: ",
	}
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("stdout lines:\n%s\nwant %d lines like %q", out, len(want), want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d = %q, want prefix %q", i+1, got[i], want[i])
		}
	}
	if !strings.Contains(got[3], "unknown op") || !strings.Contains(got[4], `"org_2"`) {
		t.Errorf("failure lines do not say why:\n%s", out)
	}
	if code != 1 || !strings.Contains(errs, "3 of 6 jobs failed") {
		t.Errorf("exit %d, stderr %q; want 1 and a count of failures", code, errs)
	}
}

func TestPublishNoServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	onlyEnv(t, map[string]string{"ORGDISPATCH_NATS_LISTEN": addr})
	code, out, errs := runCLI(t, "publish", "--tenant", "org_1", "--op", "campaign.get", "--params", `{"campaign_id":"c"}`)
	want := fmt.Sprintf("no NATS server at nats://%s — start `orgdispatch serve` or set ORGDISPATCH_NATS_URL", addr)
	if code != 1 || out != "" || !strings.Contains(errs, want) {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errs, want)
	}
}

func TestPublishUsageErrors(t *testing.T) {
	onlyEnv(t, nil)
	for _, args := range [][]string{
		{"publish"},
		{"publish", "--tenant", "org_1"},
		{"publish", "--tenant", "org_1", "--op", "campaign.get", "--params", "{"},
		{"publish", "--tenant", "org_1", "--op", "campaign.get", "--deadline", "tomorrow"},
		{"publish", "--stdin", "--op", "campaign.get"},
		{"publish", "extra"},
		{"publish", "--nope"},
	} {
		code, _, errs := runCLI(t, args...)
		if code != 2 || errs == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
}

func TestParseDeadline(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	got, err := parseDeadline("90s", now)
	if err != nil || !got.Equal(time.Date(2026, 1, 2, 3, 5, 35, 0, time.UTC)) {
		t.Errorf("parseDeadline(90s) = %s, %v", got, err)
	}
	got, err = parseDeadline("2026-12-01T10:00:00Z", now)
	if err != nil || !got.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("parseDeadline(RFC 3339) = %s, %v", got, err)
	}
	for _, bad := range []string{"-5m", "0s", "soon", "2026-12-01"} {
		if _, err := parseDeadline(bad, now); err == nil {
			t.Errorf("parseDeadline(%q) succeeded", bad)
		}
	}
}
