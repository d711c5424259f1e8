// Package natsserver runs the embedded NATS server with JetStream that
// orgdispatch uses when no external server is configured (serve, demo, tests),
// and checks that an external server is recent enough.
package natsserver

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultPort is the client port the embedded server listens on when a
// command's configuration does not say otherwise. Config.Port's zero value
// means "do not listen", so callers that want this port set it explicitly.
const DefaultPort = 4222

// DefaultReadyTimeout is how long Start waits for the server to accept
// connections when Config.ReadyTimeout is zero.
const DefaultReadyTimeout = 10 * time.Second

// Config configures an embedded server.
type Config struct {
	// StoreDir is where JetStream keeps its files. Required.
	StoreDir string
	// Host is the interface the client (and monitor) port listens on;
	// default 127.0.0.1.
	Host string
	// Port is the client port: > 0 listens there, -1 picks a free port
	// (tests), 0 does not listen at all — only in-process connections
	// (Server.Connect) reach the server then.
	Port int
	// MonitorPort is the HTTP monitoring port (/varz, /jsz, …): 0 is off,
	// -1 picks a free port.
	MonitorPort int
	// ServerName names the server in logs and JetStream metadata; default
	// the server's generated id.
	ServerName string
	// Logger receives the server's log, Notice lines at Info, Debug and Trace
	// at Debug (only when the handler enables Debug). nil discards it.
	Logger *slog.Logger
	// ReadyTimeout bounds how long Start waits for the server to be ready;
	// default DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Server is a running embedded NATS server.
type Server struct {
	ns        *server.Server
	listening bool
	once      sync.Once
}

// Start starts an embedded server with JetStream enabled and waits until it
// accepts connections.
func Start(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsserver: StoreDir is required")
	}
	if cfg.Port < -1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("natsserver: invalid port %d", cfg.Port)
	}
	if cfg.MonitorPort < -1 || cfg.MonitorPort > 65535 {
		return nil, fmt.Errorf("natsserver: invalid monitor port %d", cfg.MonitorPort)
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	ready := cfg.ReadyTimeout
	if ready <= 0 {
		ready = DefaultReadyTimeout
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       host,
		Port:       cfg.Port,
		DontListen: cfg.Port == 0,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
	}
	if cfg.MonitorPort != 0 {
		opts.HTTPHost = host
		opts.HTTPPort = cfg.MonitorPort
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	if cfg.Logger != nil {
		l := logger{l: cfg.Logger}
		ns.SetLoggerV2(l, l.enabled(slog.LevelDebug), l.enabled(levelTrace), false)
	}
	ns.Start()
	if !ns.ReadyForConnections(ready) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsserver: server not ready for connections after %s (store %s, %s)", ready, cfg.StoreDir, listenDesc(host, cfg.Port))
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsserver: JetStream failed to start (store %s)", cfg.StoreDir)
	}
	return &Server{ns: ns, listening: cfg.Port != 0}, nil
}

func listenDesc(host string, port int) string {
	switch port {
	case 0:
		return "not listening"
	case -1:
		return "listening on " + host + ", random port"
	default:
		return fmt.Sprintf("listening on %s:%d", host, port)
	}
}

// ClientURL is the URL other processes connect to, e.g. nats://127.0.0.1:4222
// (with the actual port when Config.Port was -1). It is "" when the server
// does not listen.
func (s *Server) ClientURL() string {
	if !s.listening {
		return ""
	}
	return s.ns.ClientURL()
}

// MonitorURL is the base URL of the HTTP monitoring endpoint, or "" when it
// is off.
func (s *Server) MonitorURL() string {
	addr := s.ns.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://" + addr.String()
}

// Connect opens a client connection to the server: over TCP to ClientURL when
// it listens, in-process otherwise. opts are applied after the defaults, so a
// caller may override them.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	url := s.ClientURL()
	if !s.listening {
		opts = append([]nats.Option{nats.InProcessServer(s.ns)}, opts...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("natsserver: connect: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped. It is safe to
// call more than once.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
}
