package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig(t *testing.T) Config {
	t.Helper()
	return Config{
		NATSListen:      "127.0.0.1:0",
		StoreDir:        t.TempDir(),
		Prefix:          "orgdispatch",
		TenantsFile:     "tenants.yaml",
		StreamReplicas:  1,
		MaxConsumers:    10,
		ReplicaID:       "test-1",
		ShutdownTimeout: time.Second,
		LogLevel:        "info",
		LogFormat:       "text",
	}
}

// freePort returns a loopback port nothing listens on (it was free a moment
// ago).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// useJetStream proves js stores and returns a message.
func useJetStream(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(ctx, "t.1", []byte("x")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if m, err := s.GetLastMsgForSubject(ctx, "t.1"); err != nil || string(m.Data) != "x" {
		t.Fatalf("GetLastMsgForSubject = %v, %v", m, err)
	}
}

func TestConnectEmbeddedListening(t *testing.T) {
	c := testConfig(t)
	nc, js, cleanup, err := Connect(t.Context(), c, nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	useJetStream(t, js)
	url := nc.ConnectedUrl()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ConnectedUrl() = %q, want the loopback listener", url)
	}
	// Another process (here: another client) reaches it over TCP.
	other, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("second client: %v", err)
	}
	other.Close()
	cleanup()
	if !nc.IsClosed() {
		t.Error("cleanup left the connection open")
	}
	if _, err := nats.Connect(url, nats.Timeout(time.Second)); err == nil {
		t.Error("server still accepts connections after cleanup")
	}
}

func TestConnectEmbeddedInProcessOnly(t *testing.T) {
	c := testConfig(t)
	c.NATSListen = ListenOff
	nc, js, cleanup, err := Connect(t.Context(), c, nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer cleanup()
	useJetStream(t, js)
	if nc.Opts.Name != "orgdispatch test-1" {
		t.Errorf("connection name = %q", nc.Opts.Name)
	}
}

func TestConnectEmbeddedPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := testConfig(t)
	c.NATSListen = l.Addr().String()
	start := time.Now()
	_, _, _, err = Connect(t.Context(), c, nil)
	if err == nil {
		t.Fatal("Connect succeeded on a taken port")
	}
	if !strings.Contains(err.Error(), "ORGDISPATCH_NATS_LISTEN") || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Errorf("error %q does not name the address and ORGDISPATCH_NATS_LISTEN", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s to report a taken port", d)
	}
}

func TestConnectExternalByURL(t *testing.T) {
	srv, _, _ := natstest.RunServer(t)
	c := testConfig(t)
	c.NATSURL = srv.ClientURL()
	nc, js, cleanup, err := Connect(t.Context(), c, nil)
	if err != nil {
		t.Fatalf("Connect(%s): %v", c.NATSURL, err)
	}
	defer cleanup()
	useJetStream(t, js)
	if nc.ConnectedUrl() != srv.ClientURL() {
		t.Errorf("connected to %q, want %q", nc.ConnectedUrl(), srv.ClientURL())
	}
	if nc.Opts.MaxReconnect != -1 {
		t.Errorf("MaxReconnect = %d, want -1 (forever)", nc.Opts.MaxReconnect)
	}
	if nc.Opts.Name != "orgdispatch test-1" {
		t.Errorf("connection name = %q", nc.Opts.Name)
	}
}

// signalHandler is a slog handler that closes a channel at the first record
// of level ≥ Warn.
type signalHandler struct {
	slog.Handler
	warned chan struct{}
	once   func()
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.once()
	}
	return nil
}

func TestConnectExternalWaitsForServer(t *testing.T) {
	port := freePort(t)
	c := testConfig(t)
	c.NATSURL = "nats://127.0.0.1:" + strconv.Itoa(port)
	warned := make(chan struct{})
	h := signalHandler{Handler: slog.DiscardHandler, warned: warned, once: sync.OnceFunc(func() { close(warned) })}
	type result struct {
		js      jetstream.JetStream
		cleanup func()
		err     error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	go func() {
		_, js, cleanup, err := Connect(ctx, c, slog.New(h))
		done <- result{js, cleanup, err}
	}()
	select {
	case <-warned: // Connect found no server and is waiting
	case r := <-done:
		t.Fatalf("Connect returned before a server existed: %v", r.err)
	case <-ctx.Done():
		t.Fatal("Connect never reported waiting")
	}
	srv, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	r := <-done
	if r.err != nil {
		t.Fatalf("Connect after the server started: %v", r.err)
	}
	defer r.cleanup()
	useJetStream(t, r.js)
}

func TestConnectExternalGivesUpWithoutShowingCredentials(t *testing.T) {
	c := testConfig(t)
	c.NATSURL = fmt.Sprintf("nats://alice:hunter2@127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, _, err := Connect(ctx, c, nil)
	if err == nil {
		t.Fatal("Connect succeeded with no server")
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "alice") {
		t.Errorf("error shows credentials: %v", err)
	}
	if !strings.Contains(err.Error(), "nats://redacted@127.0.0.1:") {
		t.Errorf("error does not name the (redacted) URL: %v", err)
	}
	if !errors.Is(err, nats.ErrNoServers) || !errors.Is(err, context.Canceled) {
		t.Errorf("error %v: want it to wrap nats.ErrNoServers and context.Canceled", err)
	}
}

func TestDialRunningServe(t *testing.T) {
	srv, _, _ := natstest.RunServer(t)
	c := testConfig(t)
	c.NATSListen = strings.TrimPrefix(srv.ClientURL(), "nats://")
	nc, js, cleanup, err := Dial(t.Context(), c, nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer cleanup()
	useJetStream(t, js)
	if nc.ConnectedUrl() != srv.ClientURL() {
		t.Errorf("connected to %q, want %q", nc.ConnectedUrl(), srv.ClientURL())
	}
}

func TestDialNothingThere(t *testing.T) {
	c := testConfig(t)
	port := freePort(t)
	c.NATSListen = "127.0.0.1:" + strconv.Itoa(port)
	_, _, _, err := Dial(t.Context(), c, nil)
	want := fmt.Sprintf("no NATS server at nats://127.0.0.1:%d — start `orgdispatch serve` or set ORGDISPATCH_NATS_URL", port)
	if err == nil || err.Error() != want {
		t.Errorf("Dial() error = %v\nwant %s", err, want)
	}

	c.NATSURL = fmt.Sprintf("nats://tok:pw@127.0.0.1:%d", port)
	_, _, _, err = Dial(t.Context(), c, nil)
	if err == nil || !strings.Contains(err.Error(), "no NATS server at nats://redacted@127.0.0.1") || strings.Contains(err.Error(), "pw") {
		t.Errorf("Dial() error = %v; want it to name the redacted URL", err)
	}

	c.NATSURL, c.NATSListen = "", ListenOff
	if _, _, _, err = Dial(t.Context(), c, nil); err == nil || !strings.Contains(err.Error(), "ORGDISPATCH_NATS_URL is empty") {
		t.Errorf("Dial() with nothing configured: error = %v", err)
	}
}

func TestNATSOptionsMissingFiles(t *testing.T) {
	c := testConfig(t)
	c.NATSURL = "nats://127.0.0.1:4222"
	c.NATSCreds = t.TempDir() + "/missing.creds"
	if _, err := c.NATSOptions(nil); err == nil || !strings.Contains(err.Error(), "ORGDISPATCH_NATS_CREDS") {
		t.Errorf("NATSOptions() error = %v; want it to name ORGDISPATCH_NATS_CREDS", err)
	}
	c.NATSCreds = ""
	c.NATSTLSCA = t.TempDir() + "/ca.pem"
	if _, err := c.NATSOptions(nil); err == nil || !strings.Contains(err.Error(), "ORGDISPATCH_NATS_TLS_CA") {
		t.Errorf("NATSOptions() error = %v; want it to name ORGDISPATCH_NATS_TLS_CA", err)
	}
}

func TestReconnectDelay(t *testing.T) {
	for attempt := 1; attempt < 100; attempt++ {
		d := reconnectDelay(attempt)
		if d <= 0 || d > reconnectMax {
			t.Fatalf("reconnectDelay(%d) = %s, want in (0, %s]", attempt, d, reconnectMax)
		}
	}
	if d := reconnectDelay(1); d > 2*reconnectBase {
		t.Errorf("reconnectDelay(1) = %s, want ≤ %s", d, 2*reconnectBase)
	}
	if d := reconnectDelay(50); d < reconnectMax/2 {
		t.Errorf("reconnectDelay(50) = %s, want ≥ %s", d, reconnectMax/2)
	}
}
