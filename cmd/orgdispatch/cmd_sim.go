package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/orgdispatch/orgdispatch/platform/platformtest"
)

func init() {
	register(command{
		name:    "sim",
		summary: "run the platform API simulator (OAuth token endpoint, outbound API, rate limits)",
		run:     runSim,
	})
}

// defaultSimClients are the simulator's development OAuth clients.
const defaultSimClients = "client_org1:secret1:org_1,client_org2:secret2:org_2,client_org3:secret3:org_3"

const simHelp = `Usage: orgdispatch sim [flags]

Serves the in-process Genesys Cloud Platform API simulator (package
platform/platformtest) over HTTP, for the local stack and manual tries:
POST /oauth/token (client credentials, HTTP Basic auth) and the outbound
endpoints under /api/v2/outbound/, with per-bucket rate-limit windows.
Settings come from flags only (no ORGDISPATCH_* variables). Ctrl-C stops it.

Point a tenant at it with api_base: http://ADDR and token_url:
http://ADDR/oauth/token. Try it:

  TOKEN=$(curl -sS -u client_org1:secret1 -d grant_type=client_credentials \
    http://127.0.0.1:9090/oauth/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -sS -i -X POST -H "Authorization: Bearer $TOKEN" \
    http://127.0.0.1:9090/api/v2/outbound/campaigns/cmp-1/start

Flags:
`

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), simHelp)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:9090", "host:port to listen on (port 0: a free port, printed on start)")
	clients := fs.String("clients", defaultSimClients, "OAuth clients as id:secret:org, comma-separated (development secrets only)")
	limit := fs.Int("limit", 300, "requests per window per bucket; 0: unlimited")
	window := fs.Duration("window", platformtest.DefaultWindow, "rate-limit window")
	scope := fs.String("scope", platformtest.ScopeToken, "rate-limit bucket per token, client or org")
	var shared [][]string
	fs.Func("shared", "comma-separated client ids that share one bucket, like one OAuth client used for many orgs (repeatable: one bucket per flag)", func(v string) error {
		var ids []string
		for id := range strings.SplitSeq(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
		if len(ids) < 2 {
			return errors.New("name at least two client ids")
		}
		shared = append(shared, ids)
		return nil
	})
	tokenTTL := fs.Duration("token-ttl", platformtest.DefaultTokenTTL, "lifetime of issued access tokens")
	latency := fs.Duration("latency", 0, "latency added to every API answer")
	errorRatio := fs.Float64("error-ratio", 0, "fraction of API requests answered 503 (0 to 1)")
	seed := fs.Int64("seed", 1, "seed for --error-ratio and generated contact ids")
	autoCreate := fs.Bool("auto-create", true, "create campaigns and contact lists on first use instead of answering 404")
	logRequests := fs.Bool("log-requests", false, "log every answered request (method, path, client, status; never tokens)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}

	creds, err := parseSimClients(*clients)
	if err != nil {
		return fmt.Errorf("%w: --clients: %v", errUsage, err)
	}
	cfg := platformtest.Config{
		Clients:     creds,
		Limit:       *limit,
		Window:      *window,
		Scope:       *scope,
		TokenTTL:    *tokenTTL,
		Latency:     *latency,
		ErrorRatio:  *errorRatio,
		Seed:        *seed,
		AutoCreate:  *autoCreate,
		MaxRecorded: -1, // nothing reads the log of a standalone simulator
	}
	if len(shared) > 0 {
		cfg.SharedBuckets = make(map[string]string)
		for i, ids := range shared {
			for _, id := range ids {
				if prev, dup := cfg.SharedBuckets[id]; dup {
					return fmt.Errorf("%w: --shared: client %q is in two groups (%s)", errUsage, id, prev)
				}
				cfg.SharedBuckets[id] = fmt.Sprintf("shared-%d", i+1)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	sim := platformtest.New(cfg)
	if *logRequests {
		sim.OnRequest(func(r platformtest.Request) {
			logger.Info("request", "method", r.Method, "path", r.Path, "client_id", r.ClientID, "tenant", r.Org, "status", r.Status)
		})
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	base := "http://" + ln.Addr().String()
	ids := make([]string, len(creds))
	for i, c := range creds {
		ids[i] = c.ID + "/" + c.Org
	}
	logger.Info("platform simulator listening on "+base,
		"url", base, "token_url", base+"/oauth/token", "clients", strings.Join(ids, ","),
		"limit", cfg.Limit, "window", cfg.Window, "scope", cfg.Scope, "auto_create", cfg.AutoCreate)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second+cfg.Latency)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("platform simulator stopped")
	return nil
}

// parseSimClients parses "id:secret:org,…". The secret is everything between
// the first and the last colon, so it may contain colons itself.
func parseSimClients(s string) ([]platformtest.ClientCred, error) {
	var out []platformtest.ClientCred
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		first, last := strings.Index(item, ":"), strings.LastIndex(item, ":")
		if first < 0 || first == last {
			return nil, fmt.Errorf("client %d: want id:secret:org", i+1)
		}
		c := platformtest.ClientCred{ID: item[:first], Secret: item[first+1 : last], Org: item[last+1:]}
		if c.ID == "" || c.Secret == "" || c.Org == "" {
			return nil, fmt.Errorf("client %d (%q): id, secret and org must not be empty", i+1, c.ID)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no clients")
	}
	return out, nil
}
