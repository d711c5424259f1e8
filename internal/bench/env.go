package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// env is one scenario run's world: an embedded JetStream server with file
// storage in a fresh temporary directory, listening on 127.0.0.1; the
// platform simulator served over HTTP on 127.0.0.1; and the harness's own
// NATS connection (for publishing jobs and reading state). Every mode of a
// scenario gets a fresh env, so modes cannot disturb each other.
type env struct {
	dir    string
	ns     *natsserver.Server
	nc     *nats.Conn // the load generator's connection
	js     jetstream.JetStream
	sim    *platformtest.Simulator
	simURL string
	http   *http.Server
	log    *slog.Logger
	closed sync.Once
}

// newEnv starts the server and the simulator under their CPU profile
// labels. baseDir "" means the system's temporary directory.
func newEnv(ctx context.Context, baseDir string, simCfg platformtest.Config, log *slog.Logger) (_ *env, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &env{log: log}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dir, err = os.MkdirTemp(baseDir, "orgdispatch-bench-"); err != nil {
		return nil, fmt.Errorf("bench: store dir: %w", err)
	}
	withComponent(ctx, compNATS, func(context.Context) {
		e.ns, err = natsserver.Start(natsserver.Config{StoreDir: e.dir, Port: -1, ServerName: "bench"})
	})
	if err != nil {
		return nil, fmt.Errorf("bench: start nats-server: %w", err)
	}
	withComponent(ctx, compLoadgen, func(context.Context) {
		e.nc, err = e.ns.Connect(nats.Name("bench-loadgen"))
	})
	if err != nil {
		return nil, fmt.Errorf("bench: connect: %w", err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		return nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	if err := simCfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench: simulator config: %w", err)
	}
	if simCfg.MaxRecorded == 0 {
		simCfg.MaxRecorded = -1 // the recorder observes every request; no ring needed
	}
	e.sim = platformtest.New(simCfg)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: simulator listener: %w", err)
	}
	e.simURL = "http://" + l.Addr().String()
	e.http = &http.Server{Handler: e.sim, ReadHeaderTimeout: 10 * time.Second}
	withComponent(ctx, compSimulator, func(context.Context) {
		go func() {
			if err := e.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("bench: simulator server stopped", "err", err)
			}
		}()
	})
	return e, nil
}

// observe makes rec see every request the simulator answers from now on.
func (e *env) observe(rec *recorder) { e.sim.OnRequest(rec.observe) }

// tokenURL is the simulator's OAuth token endpoint.
func (e *env) tokenURL() string { return e.simURL + "/oauth/token" }

// connect opens another connection to the server, labelled as component
// (e.g. a worker replica's own connection).
func (e *env) connect(ctx context.Context, component, name string) (nc *nats.Conn, js jetstream.JetStream, err error) {
	withComponent(ctx, component, func(context.Context) {
		nc, err = e.ns.Connect(nats.Name(name))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bench: connect %s: %w", name, err)
	}
	if js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("bench: jetstream %s: %w", name, err)
	}
	return nc, js, nil
}

// close stops everything the env started and removes its files. It may be
// called more than once.
func (e *env) close() { e.closed.Do(e.doClose) }

func (e *env) doClose() {
	if e.http != nil {
		_ = e.http.Close()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}
