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
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
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
