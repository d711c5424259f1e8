package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/internal/condlog"
	"github.com/orgdispatch/orgdispatch/internal/natsserver"
)

// Reconnect backoff towards an external server: doubling from
// reconnectBase, capped at reconnectMax, with jitter. The client reconnects
// forever; jobs wait in JetStream meanwhile.
const (
	reconnectBase = 250 * time.Millisecond
	reconnectMax  = 10 * time.Second
	dialTimeout   = 5 * time.Second
)

// reconnectDelay is the wait before reconnect attempt n (1-based): full
// jitter over an exponential ceiling.
func reconnectDelay(attempts int) time.Duration {
	ceil := reconnectMax
	if attempts < 16 {
		if d := reconnectBase << attempts; d < ceil {
			ceil = d
		}
	}
	return ceil/2 + rand.N(ceil/2+1)
}

// NATSOptions are the client options for an external server: connection
// name, credentials, TLS, unlimited reconnects with backoff, and handlers
// that log connection changes (never credentials). It checks that the
// configured files exist, so a typo fails at start with the variable's name.
func (c Config) NATSOptions(logger *slog.Logger) ([]nats.Option, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name("orgdispatch " + c.ReplicaID),
		nats.Timeout(dialTimeout),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				logger.Warn("NATS disconnected; reconnecting", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				logger.Warn("NATS async error", "subject", sub.Subject, "error", err)
				return
			}
			logger.Warn("NATS async error", "error", err)
		}),
	}
	for name, f := range map[string]string{"NATS_CREDS": c.NATSCreds, "NATS_TLS_CA": c.NATSTLSCA, "NATS_TLS_CERT": c.NATSTLSCert, "NATS_TLS_KEY": c.NATSTLSKey} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("config: %s: %w", key(name), err)
		}
	}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.NATSInboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.NATSInboxPrefix))
	}
	if c.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
	}
	if c.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(c.NATSTLSCert, c.NATSTLSKey))
	}
	return opts, nil
}

// Connect connects the process to NATS for serve, worker and demo-like
// commands. With ORGDISPATCH_NATS_URL empty it starts the embedded JetStream
// server (store ORGDISPATCH_STORE_DIR, listening on ORGDISPATCH_NATS_LISTEN)
// and connects to it; otherwise it dials the URL, waiting (with backoff, until
// ctx ends) while no server answers, as happens when NATS starts after us in
// a compose stack. Either way it checks the server supports consumer pause.
//
// cleanup closes the connection and stops the embedded server; call it once
// every component using the connection has stopped.
func Connect(ctx context.Context, c Config, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, func(), error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if c.Embedded() {
		return connectEmbedded(c, logger)
	}
	opts, err := c.NATSOptions(logger)
	if err != nil {
		return nil, nil, nil, err
	}
	url := RedactURL(c.NATSURL)
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(c.NATSURL, opts...)
		if err == nil {
			if err := waitJetStream(ctx, nc, logger); err != nil {
				closeConn(nc)
				return nil, nil, nil, err
			}
			return finish(nc, func() { closeConn(nc) })
		}
		if !errors.Is(err, nats.ErrNoServers) {
			return nil, nil, nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
		}
		wait := reconnectDelay(attempt)
		logger.Warn("no NATS server answers yet; retrying", "url", url, "attempt", attempt, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil, nil, nil, fmt.Errorf("connect to NATS at %s: %w (gave up: %w)", url, err, context.Cause(ctx))
		case <-time.After(wait):
		}
	}
}

// condJetStreamNotReady is logged once while the server's JetStream does not
// answer yet.
const condJetStreamNotReady = "NATS JetStream does not answer yet (no meta leader: cluster still forming?); start-up waits and retries"

// waitJetStream checks the server nc is connected to
// (natsserver.CheckServerVersion) and, while its JetStream cannot answer yet
// — a cluster that is still forming has no meta leader — waits with backoff
// and checks again until ctx ends, logging the condition once and summing
// it up when JetStream answers. Other failures (too old a server, JetStream
// disabled) are returned at once: the operator must act on them.
func waitJetStream(ctx context.Context, nc *nats.Conn, logger *slog.Logger) error {
	cond := condlog.New(condlog.Config{Logger: logger})
	for attempt := 1; ; attempt++ {
		err := natsserver.CheckServerVersion(nc)
		if err == nil {
			cond.Clear("", condJetStreamNotReady)
			return nil
		}
		if !jetStreamNotReady(err) {
			return err
		}
		cond.Report(slog.LevelWarn, "", condJetStreamNotReady, "url", nc.ConnectedUrlRedacted(), "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up waiting: %w)", err, context.Cause(ctx))
		case <-time.After(reconnectDelay(attempt)):
		}
	}
}

// jetStreamNotReady reports a JetStream that may answer later: no answer in
// time, no responders, or "temporarily unavailable" (503).
func jetStreamNotReady(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || (errors.As(err, &apiErr) && apiErr.Code == 503)
}

func connectEmbedded(c Config, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, func(), error) {
	host, port := c.EmbeddedListen()
	if port > 0 {
		// The server would only report a taken port after its ready timeout;
		// probe first to fail at once with advice.
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("embedded NATS server cannot listen on %s (%w): is another orgdispatch serve running? Set %s to another host:port, or %q", addr, err, key("NATS_LISTEN"), ListenOff)
		}
		l.Close()
	}
	if err := os.MkdirAll(c.StoreDir, 0o750); err != nil {
		return nil, nil, nil, fmt.Errorf("embedded NATS server: %s: %w", key("STORE_DIR"), err)
	}
	srv, err := natsserver.Start(natsserver.Config{
		StoreDir:   c.StoreDir,
		Host:       host,
		Port:       port,
		ServerName: "orgdispatch-" + c.ReplicaID,
		Logger:     serverLogger(logger),
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	nc, err := srv.Connect(nats.Name("orgdispatch "+c.ReplicaID), nats.MaxReconnects(-1))
	if err != nil {
		srv.Shutdown()
		return nil, nil, nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	return finish(nc, func() {
		closeConn(nc)
		srv.Shutdown()
	})
}

// Dial connects a command that talks to an already running system (publish,
// status, pause, …): to ORGDISPATCH_NATS_URL, or else to the embedded
// server of a running serve at ORGDISPATCH_NATS_LISTEN. It tries once and says
// plainly when nothing answers.
func Dial(ctx context.Context, c Config, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, func(), error) {
	url := c.ClientURL()
	if url == "" {
		return nil, nil, nil, fmt.Errorf("nothing to connect to: %s is empty and the embedded listener is off (%s=%s)", key("NATS_URL"), key("NATS_LISTEN"), ListenOff)
	}
	dc := c
	dc.NATSURL = url
	opts, err := dc.NATSOptions(logger)
	if err != nil {
		return nil, nil, nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(min(dialTimeout, max(time.Until(d), time.Millisecond))))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		shown := RedactURL(url)
		if errors.Is(err, nats.ErrNoServers) {
			if c.NATSURL == "" {
				return nil, nil, nil, fmt.Errorf("no NATS server at %s — start `orgdispatch serve` or set %s", shown, key("NATS_URL"))
			}
			return nil, nil, nil, fmt.Errorf("no NATS server at %s (%s)", shown, key("NATS_URL"))
		}
		return nil, nil, nil, fmt.Errorf("connect to NATS at %s: %w", shown, err)
	}
	return finish(nc, func() { closeConn(nc) })
}

// finish checks the server and opens the JetStream context.
func finish(nc *nats.Conn, cleanup func()) (*nats.Conn, jetstream.JetStream, func(), error) {
	if err := natsserver.CheckServerVersion(nc); err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		cleanup()
		return nil, nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, cleanup, nil
}

// closeConn flushes what was published (acks, naks) and closes.
func closeConn(nc *nats.Conn) {
	if nc.IsConnected() {
		_ = nc.FlushTimeout(time.Second)
	}
	nc.Close()
}
