package natsserver

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t *testing.T, s *Server) *nats.Conn {
	t.Helper()
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// roundTrip stores a message in a stream and reads it back, proving JetStream
// works over nc.
func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("hello")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, "t.x")
	if err != nil {
		t.Fatalf("GetLastMsgForSubject: %v", err)
	}
	if string(msg.Data) != "hello" {
		t.Fatalf("stored %q, want hello", msg.Data)
	}
}

func TestStartListening(t *testing.T) {
	s := start(t, Config{Port: -1})
	url := s.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":-1") {
		t.Fatalf("ClientURL = %q, want nats://127.0.0.1:<port>", url)
	}
	nc := connect(t, s)
	if got := nc.ConnectedUrl(); got != url {
		t.Errorf("connected to %q, want %q (TCP)", got, url)
	}
	if err := CheckServerVersion(nc); err != nil {
		t.Errorf("CheckServerVersion on the embedded server: %v", err)
	}
	roundTrip(t, nc)
}

func TestStartInProcessOnly(t *testing.T) {
	s := start(t, Config{Port: 0})
	if url := s.ClientURL(); url != "" {
		t.Fatalf("ClientURL = %q for a server that does not listen", url)
	}
	nc := connect(t, s)
	if err := CheckServerVersion(nc); err != nil {
		t.Errorf("CheckServerVersion: %v", err)
	}
	roundTrip(t, nc)
}

func TestStartPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := start(t, Config{StoreDir: dir})
	roundTrip(t, connect(t, s))
	s.Shutdown()
	s.Shutdown() // idempotent

	s2 := start(t, Config{StoreDir: dir})
	js, err := jetstream.New(connect(t, s2))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	if n := st.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream holds %d messages after restart, want 1", n)
	}
}

func TestStartMonitor(t *testing.T) {
	s := start(t, Config{Port: 0, MonitorPort: -1})
	u := s.MonitorURL()
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("MonitorURL = %q", u)
	}
	resp, err := http.Get(u + "/varz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/varz: %s", resp.Status)
	}
	if off := start(t, Config{Port: 0}); off.MonitorURL() != "" {
		t.Errorf("MonitorURL = %q with monitoring off", off.MonitorURL())
	}
}

func TestStartInvalidConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no store", Config{Port: -1}, "StoreDir is required"},
		{"bad port", Config{StoreDir: t.TempDir(), Port: 70000}, "invalid port 70000"},
		{"bad monitor port", Config{StoreDir: t.TempDir(), MonitorPort: -2}, "invalid monitor port -2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Start(tc.cfg)
			if err == nil {
				s.Shutdown()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestStartPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	var buf syncBuffer
	s, err := Start(Config{
		StoreDir:     t.TempDir(),
		Port:         port,
		ReadyTimeout: 500 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(&buf, nil)),
	})
	if err == nil {
		s.Shutdown()
		t.Fatal("Start succeeded on a port in use")
	}
	if !strings.Contains(err.Error(), "not ready for connections") {
		t.Errorf("error = %q", err)
	}
	if out := buf.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "fatal=true") {
		t.Errorf("the listen failure was not logged as a fatal error:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestLogsToSlog(t *testing.T) {
	var info, debug syncBuffer
	s := start(t, Config{Port: 0, Logger: slog.New(slog.NewTextHandler(&info, nil))})
	roundTrip(t, connect(t, s))
	s.Shutdown()
	out := info.String()
	if !strings.Contains(out, "level=INFO") || !strings.Contains(out, "component=nats-server") || !strings.Contains(out, "Starting nats-server") {
		t.Errorf("notices not logged at INFO:\n%s", out)
	}
	if strings.Contains(out, "level=DEBUG") {
		t.Errorf("debug lines logged by an Info handler:\n%s", out)
	}

	s = start(t, Config{Port: 0, Logger: slog.New(slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	roundTrip(t, connect(t, s))
	s.Shutdown()
	out = debug.String()
	if !strings.Contains(out, "level=DEBUG") {
		t.Errorf("no debug lines with a Debug handler:\n%s", out)
	}
	if strings.Contains(out, "level=DEBUG-4") {
		t.Errorf("trace lines logged by a Debug handler")
	}
}

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    string // "" = ok
	}{
		{"2.11.0", ""},
		{"2.15.2", ""},
		{"2.12.0-RC.1", ""},
		{"2.11.4+build.5", ""},
		{"3.0.0", ""},
		{"2.9.25", "nats-server 2.9.25 at nats://h:4222 lacks the consumer pause API (needs ≥ 2.11.0)"},
		{"2.10.29", "lacks the consumer pause API"},
		{"1.99.0", "lacks the consumer pause API"},
		{"", "unparseable version"},
		{"garbage", "unparseable version"},
		{"2.11", "unparseable version"},
		{"2.x.0", "unparseable version"},
		{"2.+11.0", "unparseable version"},
		{"2..0", "unparseable version"},
		{"2.11.0.1", "unparseable version"},
		{"99999999999999999999.0.0", "unparseable version"},
	} {
		err := checkVersion(tc.version, "nats://h:4222")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tc.version, err)
		case tc.want != "" && err == nil:
			t.Errorf("%q: accepted", tc.version)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%q: error %q does not contain %q", tc.version, err, tc.want)
		}
	}
}

func TestCheckServerVersionWithoutJetStream(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("plain server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	err = CheckServerVersion(nc)
	if err == nil || !strings.Contains(err.Error(), "JetStream disabled") {
		t.Fatalf("CheckServerVersion = %v, want a JetStream disabled error", err)
	}
}
