package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orgdispatch/orgdispatch/internal/config"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
)

// TestWorkerHTTPClosesIdleConnections: the worker's metrics and health
// server closes a keep-alive connection left idle, so idle clients cannot
// hold its connections for ever.
func TestWorkerHTTPClosesIdleConnections(t *testing.T) {
	prev := workerHTTPIdleTimeout
	workerHTTPIdleTimeout = 100 * time.Millisecond
	t.Cleanup(func() { workerHTTPIdleTimeout = prev })
	t.Setenv(envHTTPAddr, "127.0.0.1:0")

	_, nc, js := natstest.RunServer(t)
	cfg := config.Config{HTTPAddr: "127.0.0.1:0", Prefix: "od"}
	n := &node{cfg: cfg, logger: slog.New(slog.DiscardHandler), nc: nc, js: js, names: cfg.Names()}
	web, err := workerHTTPServer(n)
	if err != nil {
		t.Fatal(err)
	}
	if web == nil {
		t.Fatal("no worker HTTP server with ORGDISPATCH_HTTP_ADDR set")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- web.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker http: %v", err)
		}
	})

	addr := strings.TrimSuffix(strings.TrimPrefix(web.url, "http://"), " (metrics and health only)")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// A guard only: the server is expected to close the idle connection
	// after 100 ms; without an idle timeout it never does.
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %s", resp.Status)
	}
	_, err = br.ReadByte()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the idle keep-alive connection is still open: the worker HTTP server has no idle timeout")
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("reading the idle connection: %v, want EOF (closed by the server)", err)
	}
}

// TestWorkerMetricsAuth: with ORGDISPATCH_METRICS_AUTH a worker replica's
// /metrics needs a token with the metrics right, like the API's; health
// probes stay open.
func TestWorkerMetricsAuth(t *testing.T) {
	t.Setenv(envHTTPAddr, "127.0.0.1:0")
	dir := t.TempDir()
	tokens := dir + "/tokens.yaml"
	if err := os.WriteFile(dir+"/prom", []byte("prom-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/crm", []byte("crm-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := "tokens:\n  - {name: prometheus, token_file: " + dir + "/prom, tenants: [\"*\"], rights: [metrics]}\n" +
		"  - {name: crm, token_file: " + dir + "/crm, tenants: [org_1], rights: [publish]}\n"
	if err := os.WriteFile(tokens, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, nc, js := natstest.RunServer(t)
	cfg := config.Config{HTTPAddr: "127.0.0.1:0", Prefix: "od", MetricsAuth: true, APITokensFile: tokens, APIToken: "full-token-0123456789"}
	n := &node{cfg: cfg, logger: slog.New(slog.DiscardHandler), nc: nc, js: js, names: cfg.Names()}
	web, err := workerHTTPServer(n)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- web.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker http: %v", err)
		}
	}()
	base := strings.TrimSuffix(web.url, " (metrics and health only)")
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/metrics", "", 401}, {"/metrics", "wrong", 401}, {"/metrics", "crm-token-0123456789", 403},
		{"/metrics", "prom-token-0123456789", 200}, {"/metrics", "full-token-0123456789", 200},
		{"/healthz", "", 200},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", base+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s with %.4s…: %d, want %d", c.path, c.token, resp.StatusCode, c.want)
		}
	}
	// A DNS-rebinding page's Host gets nothing, not even health.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/healthz", nil)
	req.Host = "evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("GET /healthz with Host evil.example: %d, want 421", resp.StatusCode)
	}
}
