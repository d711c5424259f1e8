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
	"strconv"
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
POST /oauth/token (client credentials, HTTP Basic auth), the outbound
endpoints under /api/v2/outbound/ and the organization limits API
(GET /api/v2/organizations/limits/namespaces/platform.api), with
per-bucket rate-limit windows. Settings come from flags only (no
ORGDISPATCH_* variables). Ctrl-C stops it.

It behaves like today's platform: an Inin-Correlation-Id header on every
answer, no inin-ratelimit-* headers (--legacy-headers brings them back),
429 with Retry-After and the normalized body naming the limit per minute
(--omit-limit-body drops the limit object), 204 from start and stop, stop
asynchronous (on, stopping, off after --stop-delay), strict campaign
status transitions (--lenient-status turns the check off), contact data
values strings only.

--endpoint-limit adds a second, lower limit for a family of endpoints
(repeatable):

  --endpoint-limit PREFIX=LIMIT[/WINDOW],key=KEY,namespace=NAMESPACE

PREFIX is a path prefix under /api/ (no commas), LIMIT the requests per
WINDOW (default: --window), KEY and NAMESPACE name the limit in its 429s
and the limits API. For example:

  --endpoint-limit /api/v2/outbound/=100/1m,key=outbound.rate.per.minute,namespace=outbound

Point a tenant at it with api_base: http://ADDR and token_url:
http://ADDR/oauth/token. Try it:

  TOKEN=$(curl -sS -u client_org1:secret1 -d grant_type=client_credentials \
    http://127.0.0.1:9090/oauth/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -sS -i -X POST -H "Authorization: Bearer $TOKEN" \
    http://127.0.0.1:9090/api/v2/outbound/campaigns/cmp-1/start
  # HTTP/1.1 204 No Content, Inin-Correlation-Id: ...

Flags:
`

// simSettings are the parsed flags of orgdispatch sim.
type simSettings struct {
	addr        string
	logRequests bool
	cfg         platformtest.Config // validated
}

// parseSimArgs parses the flags of orgdispatch sim (usage to stderr) into
// a validated simulator Config; errors are errUsage or flag.ErrHelp.
func parseSimArgs(args []string, stderr io.Writer) (simSettings, error) {
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
	legacyHeaders := fs.Bool("legacy-headers", false, "send the inin-ratelimit-allowed/count/reset headers the platform removed in 2021")
	omitLimitBody := fs.Bool("omit-limit-body", false, "leave the limit object out of 429 bodies")
	stopDelay := fs.Duration("stop-delay", platformtest.DefaultStopDelay, "how long a stopped campaign stays stopping before it is off")
	lenientStatus := fs.Bool("lenient-status", false, "accept any campaign status change (default: off only from on; on only from off, complete, invalid, forced_off)")
	var endpointLimits []platformtest.EndpointLimit
	fs.Func("endpoint-limit", "a limit for a family of endpoints: PREFIX=LIMIT[/WINDOW],key=KEY,namespace=NAMESPACE (repeatable; see above)", func(v string) error {
		e, err := parseEndpointLimit(v)
		if err != nil {
			return err
		}
		endpointLimits = append(endpointLimits, e)
		return nil
	})
	logRequests := fs.Bool("log-requests", false, "log every answered request (method, path, client, status; never tokens)")
	if err := fs.Parse(args); err != nil {
		return simSettings{}, usageErr(err)
	}
	if fs.NArg() > 0 {
		return simSettings{}, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}

	creds, err := parseSimClients(*clients)
	if err != nil {
		return simSettings{}, fmt.Errorf("%w: --clients: %v", errUsage, err)
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

		EndpointLimits:           endpointLimits,
		LegacyRateLimitHeaders:   *legacyHeaders,
		OmitLimitInBody:          *omitLimitBody,
		StopDelay:                *stopDelay,
		LenientStatusTransitions: *lenientStatus,
	}
	if len(shared) > 0 {
		cfg.SharedBuckets = make(map[string]string)
		for i, ids := range shared {
			for _, id := range ids {
				if prev, dup := cfg.SharedBuckets[id]; dup {
					return simSettings{}, fmt.Errorf("%w: --shared: client %q is in two groups (%s)", errUsage, id, prev)
				}
				cfg.SharedBuckets[id] = fmt.Sprintf("shared-%d", i+1)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return simSettings{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return simSettings{addr: *addr, logRequests: *logRequests, cfg: cfg}, nil
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	set, err := parseSimArgs(args, stderr)
	if err != nil {
		return err
	}
	cfg := set.cfg

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	sim := platformtest.New(cfg)
	if set.logRequests {
		sim.OnRequest(func(r platformtest.Request) {
			logger.Info("request", "method", r.Method, "path", r.Path, "client_id", r.ClientID, "tenant", r.Org, "status", r.Status)
		})
	}

	ln, err := net.Listen("tcp", set.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	base := "http://" + ln.Addr().String()
	ids := make([]string, len(cfg.Clients))
	for i, c := range cfg.Clients {
		ids[i] = c.ID + "/" + c.Org
	}
	logger.Info("platform simulator listening on "+base,
		"url", base, "token_url", base+"/oauth/token", "clients", strings.Join(ids, ","),
		"limit", cfg.Limit, "window", cfg.Window, "scope", cfg.Scope, "endpoint_limits", len(cfg.EndpointLimits),
		"legacy_headers", cfg.LegacyRateLimitHeaders, "stop_delay", cfg.StopDelay,
		"lenient_status", cfg.LenientStatusTransitions, "auto_create", cfg.AutoCreate)

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

// parseEndpointLimit parses PREFIX=LIMIT[/WINDOW],key=KEY,namespace=NAMESPACE
// (the --endpoint-limit flag). A zero Window means the main window.
func parseEndpointLimit(s string) (platformtest.EndpointLimit, error) {
	var e platformtest.EndpointLimit
	items := strings.Split(s, ",")
	eq := strings.LastIndex(items[0], "=")
	if eq < 0 {
		return e, errors.New("want PREFIX=LIMIT[/WINDOW],key=KEY,namespace=NAMESPACE")
	}
	e.PathPrefix = strings.TrimSpace(items[0][:eq])
	limit, window, hasWindow := strings.Cut(items[0][eq+1:], "/")
	n, err := strconv.Atoi(strings.TrimSpace(limit))
	if err != nil || n <= 0 {
		return e, fmt.Errorf("limit %q is not a positive integer", limit)
	}
	e.Limit = n
	if hasWindow {
		d, err := time.ParseDuration(strings.TrimSpace(window))
		if err != nil || d <= 0 {
			return e, fmt.Errorf("window %q is not a positive duration", window)
		}
		e.Window = d
	}
	for _, item := range items[1:] {
		name, value, _ := strings.Cut(item, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		var field *string
		switch name {
		case "key":
			field = &e.Key
		case "namespace":
			field = &e.Namespace
		default:
			return e, fmt.Errorf("unknown setting %q (want key= or namespace=)", name)
		}
		if *field != "" {
			return e, fmt.Errorf("%s given twice", name)
		}
		*field = value
	}
	return e, e.Validate()
}
