package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/api"
	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
	"github.com/orgdispatch/orgdispatch/tenants"
)

const adminTestToken = "cli-test-token-123"

// adminAPI is a real api.Server on 127.0.0.1:0 over a real NATS server with
// tenants org_1 and org_2; ORGDISPATCH_API_URL and ORGDISPATCH_API_TOKEN
// point the admin commands at it.
type adminAPI struct {
	js     jetstream.JetStream
	names  dispatcher.Names
	client *api.Client
}

func startAdminAPI(t *testing.T) *adminAPI {
	t.Helper()
	_, _, js := natstest.RunServer(t)
	names := dispatcher.MustNames("")
	ts := []tenants.Tenant{{ID: "org_1", Concurrency: 2}, {ID: "org_2", Concurrency: 4}}
	if err := dispatcher.Provision(t.Context(), js, names, dispatcher.StreamConfig{}, ts); err != nil {
		t.Fatal(err)
	}
	admin := dispatcher.NewAdmin(js, names, dispatcher.WithTenantsCacheTTL(0))
	srv, err := api.New(api.Config{Admin: admin, Publisher: dispatcher.NewPublisher(js, names), Token: adminTestToken,
		Audit: dispatcher.NewAuditor(js, names)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	url := "http://" + ln.Addr().String()
	t.Setenv(envAPIURL, url)
	t.Setenv(envAPIToken, adminTestToken)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := api.NewClient(url, adminTestToken, &http.Client{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	return &adminAPI{js: js, names: names, client: c}
}

// adminCLI runs the binary's command line and returns the exit status and
// output. The output must never show the API token.
func adminCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	if strings.Contains(out.String()+errb.String(), adminTestToken) {
		t.Fatalf("%q printed the API token", args)
	}
	return code, out.String(), errb.String()
}

func (a *adminAPI) submit(t *testing.T, tenant string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		j := dispatcher.Job{ID: id, Tenant: tenant, Op: "campaign.start", Params: json.RawMessage(`{"campaign_id":"c1"}`)}
		if _, err := a.client.SubmitJobs(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
}

// storeDeadLetter stores a dead letter the way the worker does.
func (a *adminAPI) storeDeadLetter(t *testing.T, tenant, id string) uint64 {
	t.Helper()
	m := nats.NewMsg(a.names.DLQSubject(tenant, "campaign.start"))
	m.Data = fmt.Appendf(nil, `{"id":%q,"tenant":%q,"op":"campaign.start","params":{"campaign_id":"c1"}}`, id, tenant)
	m.Header.Set(dispatcher.HeaderTenant, tenant)
	m.Header.Set(dispatcher.HeaderOp, "campaign.start")
	m.Header.Set(dispatcher.HeaderJobID, id)
	m.Header.Set(dispatcher.HeaderErrorClass, "permanent")
	m.Header.Set(dispatcher.HeaderError, "404 campaign not found")
	m.Header.Set(dispatcher.HeaderHTTPStatus, "404")
	m.Header.Set(dispatcher.HeaderAttempts, "1")
	ack, err := a.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func TestStatusPauseResume(t *testing.T) {
	a := startAdminAPI(t)
	a.submit(t, "org_2", "j1", "j2")

	code, out, errs := adminCLI(t, "pause", "org_1", "--for", "5m", "--reason", "deploy in progress")
	if code != 0 || !regexp.MustCompile(`^paused org_1 until \S+Z \(5m0s\): deploy in progress\n$`).MatchString(out) {
		t.Fatalf("pause: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	code, out, errs = adminCLI(t, "status")
	if code != 0 {
		t.Fatalf("status: exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("status printed %d lines, want a header, 2 tenants and a summary:\n%s", len(lines), out)
	}
	for _, col := range []string{"TENANT", "STATE", "PAUSED", "BACKLOG", "IN FLIGHT", "DONE/S", "429S", "LAST ERROR"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header %q lacks %s", lines[0], col)
		}
	}
	if f := strings.Fields(lines[1]); len(f) < 4 || f[0] != "org_1" || f[1] != "paused" || !strings.Contains(lines[1], "left)") {
		t.Errorf("org_1 row %q: want paused with the time left", lines[1])
	}
	if f := strings.Fields(lines[2]); f[0] != "org_2" || !strings.Contains(lines[2], " 2 ") || !strings.Contains(lines[2], "0/-") {
		t.Errorf("org_2 row %q: want backlog 2 and 0/- in flight (no workers)", lines[2])
	}
	if lines[3] != "2 tenants, 1 paused, 2 jobs waiting" {
		t.Errorf("summary %q", lines[3])
	}

	code, out, _ = adminCLI(t, "status", "org_1")
	if code != 0 || !regexp.MustCompile(`(?m)^pause reason:\s+deploy in progress$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^paused by:\s+api$`).MatchString(out) || !regexp.MustCompile(`(?m)^in flight:\s+0 of -$`).MatchString(out) {
		t.Errorf("status org_1: exit %d\n%s", code, out)
	}

	code, out, _ = adminCLI(t, "status", "--json")
	var list []dispatcher.TenantStatus
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 2 || !list[0].Paused {
		t.Errorf("status --json: exit %d, %v\n%s", code, err, out)
	}
	code, out, _ = adminCLI(t, "status", "org_2", "--json") // flags after the tenant too
	var one dispatcher.TenantStatus
	if err := json.Unmarshal([]byte(out), &one); code != 0 || err != nil || one.ID != "org_2" || one.Backlog != 2 {
		t.Errorf("status org_2 --json: exit %d, %v\n%s", code, err, out)
	}

	code, out, errs = adminCLI(t, "resume", "org_1")
	if code != 0 || out != "resumed org_1 (no workers, 0 jobs waiting)\n" {
		t.Errorf("resume: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	ts, err := a.client.Tenant(t.Context(), "org_1")
	if err != nil || ts.Paused {
		t.Errorf("org_1 after resume: %+v, %v", ts, err)
	}

	code, _, errs = adminCLI(t, "status", "org_9")
	if code != 1 || !strings.Contains(errs, "tenant not found") {
		t.Errorf("status of an unknown tenant: exit %d, stderr %q", code, errs)
	}
	code, _, errs = adminCLI(t, "pause", "org_9", "--for", "1m")
	if code != 1 || !strings.Contains(errs, "404") {
		t.Errorf("pause of an unknown tenant: exit %d, stderr %q", code, errs)
	}
	code, _, errs = adminCLI(t, "pause", "org_1", "--for", "48h")
	if code != 1 || !strings.Contains(errs, "at most 24h") {
		t.Errorf("pause for 48h: exit %d, stderr %q", code, errs)
	}
}

func TestAdminCommandsAuthAndConnectionErrors(t *testing.T) {
	startAdminAPI(t)
	t.Setenv(envAPIToken, "wrong-token")
	code, _, errs := adminCLI(t, "status")
	if code != 1 || !strings.Contains(errs, "401") {
		t.Errorf("status with a wrong token: exit %d, stderr %q", code, errs)
	}
	t.Setenv(envAPIToken, "")
	code, _, errs = adminCLI(t, "dlq", "list")
	if code != 1 || !strings.Contains(errs, "missing bearer token") {
		t.Errorf("dlq list without a token: exit %d, stderr %q", code, errs)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv(envAPIURL, "http://"+addr)
	code, _, errs = adminCLI(t, "status")
	if code != 1 || !strings.Contains(errs, addr) {
		t.Errorf("status with no API: exit %d, stderr %q", code, errs)
	}
	t.Setenv(envAPIURL, "not a url")
	if code, _, errs = adminCLI(t, "status"); code != 1 || !strings.Contains(errs, "not a url") {
		t.Errorf("status with a bad URL: exit %d, stderr %q", code, errs)
	}
}

func TestAdminCommandsUsage(t *testing.T) {
	t.Setenv(envAPIURL, "http://127.0.0.1:1") // never reached
	for _, args := range [][]string{
		{"status", "a", "b"},
		{"status", "--nope"},
		{"pause"},
		{"pause", "org_1"},
		{"pause", "org_1", "--for", "soon"},
		{"pause", "org_1", "--for", "-1m"},
		{"pause", "org_1", "org_2", "--for", "1m"},
		{"resume"},
		{"resume", "a", "b"},
		{"dlq"},
		{"dlq", "frob"},
		{"dlq", "list", "extra"},
		{"dlq", "replay"},
		{"dlq", "replay", "x"},
		{"dlq", "delete", "0"},
	} {
		code, _, errs := adminCLI(t, args...)
		if code != 2 || errs == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
	for _, args := range [][]string{{"status", "-h"}, {"pause", "-h"}, {"resume", "-h"}, {"dlq", "-h"}, {"dlq", "list", "-h"}} {
		if code, _, _ := adminCLI(t, args...); code != 0 {
			t.Errorf("%q: exit %d, want 0", args, code)
		}
	}
}

// TestRemoteTextEscaped: a pause reason, a worker's last error and a dead
// letter's error carrying terminal escape sequences reach the terminal
// escaped in status and dlq list.
func TestRemoteTextEscaped(t *testing.T) {
	a := startAdminAPI(t)
	evil := "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\u202e"
	if _, err := a.client.Pause(t.Context(), "org_1", time.Minute, evil); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(a.names.DLQSubject("org_2", "campaign.start"))
	m.Data = []byte(`{"id":"j1","tenant":"org_2","op":"campaign.start","params":{"campaign_id":"c"}}`)
	m.Header.Set(dispatcher.HeaderTenant, "org_2")
	m.Header.Set(dispatcher.HeaderOp, "campaign.start")
	m.Header.Set(dispatcher.HeaderJobID, "j1")
	m.Header.Set(dispatcher.HeaderErrorClass, "permanent\x1b[8m")
	m.Header.Set(dispatcher.HeaderError, "404 "+evil)
	if _, err := a.js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"status"}, {"status", "org_1"}, {"dlq", "list"}} {
		code, out, errs := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, errs)
		}
		if strings.ContainsAny(out, "\x1b\x07\u202e") {
			t.Errorf("%v printed a control character: %q", args, out)
		}
		if args[0] != "status" || len(args) > 1 { // the table shows no reason
			if !strings.Contains(out, `\x1b`) {
				t.Errorf("%v: no escaped ESC in %q", args, out)
			}
		}
	}
}
