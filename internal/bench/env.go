package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/natsserver"
	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

// env is one scenario run's world: an embedded JetStream server with file
// storage in a fresh temporary directory, listening on 127.0.0.1 (or an
// embedded cluster, or an external server: natsTarget); the
// platform simulator served over HTTP on 127.0.0.1; and the harness's own
// NATS connection (for publishing jobs and reading state). Every mode of a
// scenario gets a fresh env, so modes cannot disturb each other.
type env struct {
	dir    string
	target natsTarget
	ns     *natsserver.Server // one embedded server, or nil
	nodes  []*server.Server   // an embedded cluster's nodes, or nil
	urls   string             // what connections dial when ns is nil
	// names are the NATS names the scenario uses: benchNames on embedded
	// servers, a prefix of this env's own on an external one.
	names  dispatcher.Names
	nc     *nats.Conn // the load generator's connection
	js     jetstream.JetStream
	sim    *platformtest.Simulator
	simURL string
	http   *http.Server
	log    *slog.Logger
	closed sync.Once
	// cleanupErr is what deleting an external server's streams met (close).
	cleanupErr error
}

// natsTarget is the NATS a scenario's env runs on. The zero value is one
// embedded server.
type natsTarget struct {
	// URL lists external servers (comma-separated): nothing is started,
	// and the env's names get a prefix of their own (dispatcher.NewNames),
	// whose streams and buckets close deletes.
	URL string
	// Monitor lists the external servers' HTTP monitor base URLs, whose
	// /varz gives their CPU and RSS.
	Monitor []string
	// Cluster > 1 starts that many embedded servers clustered over
	// loopback.
	Cluster int
}

// desc says where the env's NATS is, for reports.
func (t natsTarget) desc() string {
	switch {
	case t.URL != "":
		return "external " + redactURLs(t.URL)
	case t.Cluster > 1:
		return fmt.Sprintf("embedded %d-node loopback cluster, in this process", t.Cluster)
	default:
		return "embedded, in this process"
	}
}

// redactURLs drops user information from comma-separated URLs.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = nil
			p = u.String()
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// newEnv starts one embedded server and the simulator under their CPU
// profile labels. baseDir "" means the system's temporary directory.
func newEnv(ctx context.Context, baseDir string, simCfg platformtest.Config, log *slog.Logger) (*env, error) {
	return newEnvOn(ctx, natsTarget{}, baseDir, simCfg, log)
}

// newEnvOn is newEnv on target's NATS.
func newEnvOn(ctx context.Context, target natsTarget, baseDir string, simCfg platformtest.Config, log *slog.Logger) (_ *env, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &env{log: log, target: target, names: benchNames}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dir, err = os.MkdirTemp(baseDir, "orgdispatch-bench-"); err != nil {
		return nil, fmt.Errorf("bench: store dir: %w", err)
	}
	switch {
	case target.URL != "":
		e.urls = target.URL
	case target.Cluster > 1:
		withComponent(ctx, compNATS, func(context.Context) {
			e.nodes, err = startCluster(e.dir, target.Cluster)
		})
		if err != nil {
			return nil, err
		}
		urls := make([]string, len(e.nodes))
		for i, s := range e.nodes {
			urls[i] = s.ClientURL()
		}
		e.urls = strings.Join(urls, ",")
	default:
		withComponent(ctx, compNATS, func(context.Context) {
			e.ns, err = natsserver.Start(natsserver.Config{StoreDir: e.dir, Port: -1, ServerName: "bench"})
		})
		if err != nil {
			return nil, fmt.Errorf("bench: start nats-server: %w", err)
		}
	}
	withComponent(ctx, compLoadgen, func(context.Context) {
		e.nc, err = e.dial("bench-loadgen")
	})
	if err != nil {
		return nil, fmt.Errorf("bench: connect: %w", err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		return nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	switch {
	case target.URL != "":
		if err := natsserver.CheckServerVersion(e.nc); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		if e.names, err = e.freshNames(ctx); err != nil {
			return nil, err
		}
	case target.Cluster > 1:
		if err := waitJetStream(ctx, e.js, 60*time.Second); err != nil {
			return nil, err
		}
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
		nc, err = e.dial(name)
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
		if e.target.URL != "" && e.names != benchNames {
			e.cleanupErr = e.dropNames()
		}
		e.nc.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
	}
	for _, s := range e.nodes {
		s.Shutdown()
	}
	for _, s := range e.nodes {
		s.WaitForShutdown()
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// shutdown is close, returning what deleting an external server's streams
// met.
func (e *env) shutdown() error {
	e.close()
	return e.cleanupErr
}

// dial opens a client connection to the env's server(s).
func (e *env) dial(name string) (*nats.Conn, error) {
	if e.ns != nil {
		return e.ns.Connect(nats.Name(name))
	}
	return nats.Connect(e.urls, nats.Name(name), nats.MaxReconnects(-1))
}

// waitJetStream polls until JetStream answers (a cluster has elected its
// meta leader), or timeout.
func waitJetStream(ctx context.Context, js jetstream.JetStream, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: JetStream not available after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freshNames picks a NATS name prefix no stream of the external server
// uses yet: bench<10 hex digits>.
func (e *env) freshNames(ctx context.Context) (dispatcher.Names, error) {
	for range 3 {
		var b [5]byte
		if _, err := rand.Read(b[:]); err != nil {
			return dispatcher.Names{}, fmt.Errorf("bench: prefix: %w", err)
		}
		names, err := dispatcher.NewNames("bench" + hex.EncodeToString(b[:]))
		if err != nil {
			return dispatcher.Names{}, err
		}
		owned, err := ownedStreams(ctx, e.js, names)
		if err != nil {
			return dispatcher.Names{}, err
		}
		if len(owned) == 0 {
			return names, nil
		}
	}
	return dispatcher.Names{}, errors.New("bench: no unused NATS name prefix found")
}

// ownedStreams lists the streams named after names' prefix: its jobs,
// dead-letter and audit streams and its buckets' streams (KV_<bucket>).
func ownedStreams(ctx context.Context, js jetstream.JetStream, names dispatcher.Names) ([]string, error) {
	upper := strings.ToUpper(strings.ReplaceAll(names.Prefix(), "-", "_")) + "_"
	kv := "KV_" + names.Prefix() + "_"
	var out []string
	list := js.StreamNames(ctx)
	for name := range list.Name() {
		if strings.HasPrefix(name, upper) || strings.HasPrefix(name, kv) {
			out = append(out, name)
		}
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("bench: list streams: %w", err)
	}
	return out, nil
}

// dropNames deletes every stream of the env's prefix (their consumers go
// with them) from the external server.
func (e *env) dropNames() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owned, err := ownedStreams(ctx, e.js, e.names)
	if err != nil {
		return fmt.Errorf("bench: clean up prefix %s: %w", e.names.Prefix(), err)
	}
	var errs []error
	for _, name := range owned {
		if err := e.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete stream %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: clean up prefix %s: %w", e.names.Prefix(), err)
	}
	return nil
}
