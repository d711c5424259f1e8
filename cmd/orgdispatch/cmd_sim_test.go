package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// lineWriter passes every complete line written to it on a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // incomplete: keep it
			return len(p), nil
		}
		select {
		case w.lines <- line:
		default: // nobody is listening for more lines
		}
	}
}

var simURLRE = regexp.MustCompile(`url=(http://\S+)`)

func TestSimServesTokenAndCampaignStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &lineWriter{lines: make(chan string, 16)}
	done := make(chan error, 1)
	go func() {
		done <- commands["sim"].run(ctx, []string{"--addr", "127.0.0.1:0", "--limit", "5"}, io.Discard, logs)
	}()

	var base string
	deadline := time.After(10 * time.Second)
	for base == "" {
		select {
		case line := <-logs.lines:
			if m := simURLRE.FindStringSubmatch(line); m != nil && strings.Contains(line, "listening on") {
				base = m[1]
			}
		case err := <-done:
			t.Fatalf("sim exited before listening: %v", err)
		case <-deadline:
			t.Fatal("sim did not log its address")
		}
	}

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("POST", base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("client_org2", "secret2")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || tok.AccessToken == "" || tok.TokenType != "bearer" {
		t.Fatalf("token: %d %+v %v", resp.StatusCode, tok, err)
	}

	req, _ = http.NewRequest("POST", base+"/api/v2/outbound/campaigns/cmp-1/start", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("ININ-Correlation-Id") == "" || resp.Header.Get("inin-ratelimit-allowed") != "" {
		t.Fatalf("start: %d, headers %v", resp.StatusCode, resp.Header)
	}
	// The campaign was auto-created and is on.
	req, _ = http.NewRequest("GET", base+"/api/v2/outbound/campaigns/cmp-1", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var c platformtest.Campaign
	err = json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if err != nil || c.CampaignStatus != platformtest.CampaignOn {
		t.Fatalf("campaign after start: %+v %v", c, err)
	}
	client.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sim returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sim did not exit after its context was cancelled")
	}
	if _, err := client.Get(base + "/oauth/token"); err == nil {
		t.Fatal("sim still answers after exiting")
	}
}

func TestSimUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--clients", "a:hunter2"},
		{"--clients", "a:hunter2:"},
		{"--clients", ":hunter2:org"},
		{"--clients", ","},
		{"--scope", "platform"},
		{"--limit", "-1"},
		{"--error-ratio", "2"},
		{"--shared", "client_org1"},
		{"--shared", "client_org1,nobody"},
		{"--shared", "client_org1,client_org2", "--shared", "client_org2,client_org1"},
		{"--stop-delay", "-1s"},
		{"--endpoint-limit", "/api/v2/outbound/=5"},
		{"--endpoint-limit", "/api/=1,key=k,namespace=n", "--endpoint-limit", "/api/v2/=2,key=k,namespace=n"},
		{"--endpoint-limit", "/api/=1,key=client.credentials.token.rate.per.minute,namespace=platform.api"},
		{"extra"},
	} {
		if args[0] != "--clients" {
			args = append([]string{"--clients", "client_org1:hunter2:org_1,client_org2:hunter2:org_2"}, args...)
		}
		var stderr bytes.Buffer
		err := runSim(context.Background(), args, io.Discard, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("sim %q: error %v, want a usage error", args, err)
		}
		if err != nil && strings.Contains(err.Error()+stderr.String(), "hunter2") {
			t.Errorf("sim %q: output reveals a secret: %v %s", args, err, stderr.String())
		}
	}
}

func TestParseSimClients(t *testing.T) {
	got, err := parseSimClients(" a:s:o , b:with:colons:o2,")
	want := []platformtest.ClientCred{{ID: "a", Secret: "s", Org: "o"}, {ID: "b", Secret: "with:colons", Org: "o2"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("parseSimClients: %+v %v", got, err)
	}
	def, err := parseSimClients(defaultSimClients)
	if err != nil || len(def) != 3 || def[2] != (platformtest.ClientCred{ID: "client_org3", Secret: "secret3", Org: "org_3"}) {
		t.Fatalf("defaults: %+v %v", def, err)
	}
}

func TestSimFlags(t *testing.T) {
	outbound := platformtest.EndpointLimit{PathPrefix: "/api/v2/outbound/", Limit: 100, Window: time.Minute,
		Key: "outbound.rate.per.minute", Namespace: "outbound"}
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, cfg platformtest.Config)
	}{
		{"defaults: today's platform", nil, func(t *testing.T, cfg platformtest.Config) {
			if cfg.LegacyRateLimitHeaders || cfg.OmitLimitInBody || cfg.LenientStatusTransitions ||
				cfg.StopDelay != platformtest.DefaultStopDelay || cfg.EndpointLimits != nil || cfg.Limit != 300 {
				t.Errorf("defaults %+v", cfg)
			}
		}},
		{"legacy and lenient", []string{"--legacy-headers", "--omit-limit-body", "--lenient-status", "--stop-delay", "1ns"}, func(t *testing.T, cfg platformtest.Config) {
			if !cfg.LegacyRateLimitHeaders || !cfg.OmitLimitInBody || !cfg.LenientStatusTransitions || cfg.StopDelay != time.Nanosecond {
				t.Errorf("config %+v", cfg)
			}
		}},
		{"endpoint limits", []string{
			"--endpoint-limit", "/api/v2/outbound/=100/1m,key=outbound.rate.per.minute,namespace=outbound",
			"--endpoint-limit", "/api/v2/users/=5,namespace=platform.api,key=users.rate.per.minute",
		}, func(t *testing.T, cfg platformtest.Config) {
			want := []platformtest.EndpointLimit{outbound,
				{PathPrefix: "/api/v2/users/", Limit: 5, Key: "users.rate.per.minute", Namespace: "platform.api"}}
			if !reflect.DeepEqual(cfg.EndpointLimits, want) {
				t.Errorf("endpoint limits %+v", cfg.EndpointLimits)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := parseSimArgs(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, set.cfg)
		})
	}
}

func TestParseEndpointLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want platformtest.EndpointLimit
		err  string // substring; "" for none
	}{
		{"/api/v2/outbound/=100/1m,key=k,namespace=n", platformtest.EndpointLimit{PathPrefix: "/api/v2/outbound/", Limit: 100, Window: time.Minute, Key: "k", Namespace: "n"}, ""},
		{" /api/v2/x = 7 / 10s , namespace = n , key = k ", platformtest.EndpointLimit{PathPrefix: "/api/v2/x", Limit: 7, Window: 10 * time.Second, Key: "k", Namespace: "n"}, ""},
		{"/api/a=b=3,key=k,namespace=n", platformtest.EndpointLimit{PathPrefix: "/api/a=b", Limit: 3, Key: "k", Namespace: "n"}, ""},
		{"/api/v2/outbound/", platformtest.EndpointLimit{}, "want PREFIX"},
		{"/api/v2/outbound/=0,key=k,namespace=n", platformtest.EndpointLimit{}, "positive integer"},
		{"/api/v2/outbound/=x,key=k,namespace=n", platformtest.EndpointLimit{}, "positive integer"},
		{"/api/v2/outbound/=5/0s,key=k,namespace=n", platformtest.EndpointLimit{}, "positive duration"},
		{"/api/v2/outbound/=5/soon,key=k,namespace=n", platformtest.EndpointLimit{}, "positive duration"},
		{"/api/v2/outbound/=5,key=k", platformtest.EndpointLimit{}, "empty namespace"},
		{"/api/v2/outbound/=5,namespace=n", platformtest.EndpointLimit{}, "empty key"},
		{"/api/v2/outbound/=5,key=k,key=j,namespace=n", platformtest.EndpointLimit{}, "twice"},
		{"/api/v2/outbound/=5,key=k,namespace=n,window=1m", platformtest.EndpointLimit{}, "unknown setting"},
		{"outbound=5,key=k,namespace=n", platformtest.EndpointLimit{}, "/api/"},
	} {
		got, err := parseEndpointLimit(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one mentioning %q", tc.in, err, tc.err)
		}
	}
}

// Whatever the input, parseEndpointLimit either fails or returns a limit
// the simulator accepts.
func FuzzParseEndpointLimit(f *testing.F) {
	f.Add("/api/v2/outbound/=100/1m,key=k,namespace=n")
	f.Add("/api/=1,key=,namespace=n")
	f.Add("=,=,")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseEndpointLimit(s)
		if err != nil {
			return
		}
		if err := (platformtest.Config{EndpointLimits: []platformtest.EndpointLimit{e}}).Validate(); err != nil {
			t.Fatalf("%q parsed to %+v, which the simulator refuses: %v", s, e, err)
		}
	})
}

func TestSimHelpNamesEveryFlag(t *testing.T) {
	code, out, _ := runCLI(t, "help", "sim")
	if code != 0 {
		t.Fatalf("help sim: exit %d", code)
	}
	for _, want := range []string{"-legacy-headers", "-omit-limit-body", "-stop-delay", "-lenient-status", "-endpoint-limit",
		"PREFIX=LIMIT[/WINDOW],key=KEY,namespace=NAMESPACE", "204 No Content", "Inin-Correlation-Id"} {
		if !strings.Contains(out, want) {
			t.Errorf("help sim does not mention %q", want)
		}
	}
}
