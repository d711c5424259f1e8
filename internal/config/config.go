// Package config reads orgdispatch's process settings from ORGDISPATCH_*
// environment variables (through github.com/kelseyhightower/envconfig),
// validates them, builds the process logger, and connects to NATS the way
// they say: the embedded JetStream server when ORGDISPATCH_NATS_URL is empty,
// an external server or cluster otherwise.
//
// Tenants are not process settings: they live in the file named by
// ORGDISPATCH_TENANTS_FILE (see package tenants).
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// EnvPrefix prefixes every environment variable orgdispatch reads.
const EnvPrefix = "ORGDISPATCH"

// ListenOff is the ORGDISPATCH_NATS_LISTEN value that keeps the embedded
// server off the network: only the process itself can reach it.
const ListenOff = "off"

// DefaultNATSListen is where the embedded server accepts clients by default,
// and where commands such as publish look for a running serve.
const DefaultNATSListen = "127.0.0.1:4222"

// Config is the process configuration. Load fills it from the environment;
// the struct tags are its reference (Usage prints them as a table).
type Config struct {
	NATSURL     string `envconfig:"NATS_URL" desc:"external NATS server URL(s), comma-separated; empty starts the embedded JetStream server"`
	NATSCreds   string `envconfig:"NATS_CREDS" desc:"credentials (.creds) file for the external server"`
	NATSTLSCA   string `envconfig:"NATS_TLS_CA" desc:"CA certificate file to verify the external server"`
	NATSTLSCert string `envconfig:"NATS_TLS_CERT" desc:"client certificate file (with NATS_TLS_KEY) for mutual TLS"`
	NATSTLSKey  string `envconfig:"NATS_TLS_KEY" desc:"client key file (with NATS_TLS_CERT)"`
	// NATSInboxPrefix is the connection's inbox prefix: a producer user of
	// `orgdispatch nats-config` may only receive replies under its own.
	NATSInboxPrefix string `envconfig:"NATS_INBOX_PREFIX" desc:"inbox prefix of the connection to the external server (e.g. _INBOX_crm for a producer user of orgdispatch nats-config); default _INBOX"`
	NATSListen      string `envconfig:"NATS_LISTEN" default:"127.0.0.1:4222" desc:"host:port the embedded server accepts clients on (port 0: random); off: in-process only"`
	StoreDir        string `envconfig:"STORE_DIR" default:"data/nats" desc:"embedded server's JetStream store directory (relative to the working directory)"`

	Prefix      string `envconfig:"PREFIX" default:"orgdispatch" desc:"prefix of every subject, stream, consumer and bucket name"`
	TenantsFile string `envconfig:"TENANTS_FILE" default:"tenants.yaml" desc:"tenants file (YAML)"`

	HTTPAddr string `envconfig:"HTTP_ADDR" default:"127.0.0.1:8080" desc:"host:port of the HTTP API, metrics and dashboard; empty: no HTTP server"`
	// HTTPHosts are the Host names the HTTP API answers to (DNS rebinding
	// protection); see api.Config.Hosts.
	HTTPHosts []string `envconfig:"HTTP_HOSTS" desc:"Host names the HTTP API (and a worker's metrics server) answers to, comma-separated (any port; IP addresses always; * for any); default localhost, 127.0.0.1, ::1 and the host of ORGDISPATCH_HTTP_ADDR"`
	APIToken  Secret   `envconfig:"API_TOKEN" desc:"bearer token required by /v1 (never logged); empty: no authentication, loopback only"`
	// APIAllowNoAuth lets the API listen on a non-loopback address without
	// a token: for a network where something in front already authenticates.
	APIAllowNoAuth bool `envconfig:"API_ALLOW_NO_AUTH" default:"false" desc:"serve /v1 without a token on a non-loopback address (only behind something that authenticates)"`
	// APITokensFile names the scoped API tokens file (see api.LoadTokens).
	APITokensFile string `envconfig:"API_TOKENS_FILE" desc:"scoped API tokens file (YAML: name, token_env or token_file, tenants, rights), reloaded on change and SIGHUP; with or instead of API_TOKEN"`
	// MetricsAuth makes /metrics require a token with the metrics right.
	MetricsAuth bool   `envconfig:"METRICS_AUTH" default:"false" desc:"require a bearer token with the metrics right on /metrics of the API and of worker replicas (it lists tenant ids)"`
	APIURL      string `envconfig:"API_URL" desc:"where status, pause, resume and dlq find the HTTP API; default http://127.0.0.1:8080"`

	StreamReplicas int `envconfig:"STREAM_REPLICAS" default:"1" desc:"replicas of streams and buckets (1-5; 3 in a cluster)"`
	MaxConsumers   int `envconfig:"MAX_CONSUMERS" default:"10000" desc:"jobs stream consumer limit (one consumer per tenant)"`
	// ConsumerStorage is "file" or "memory"; see
	// dispatcher.StreamConfig.ConsumerStorage.
	ConsumerStorage string `envconfig:"CONSUMER_STORAGE" default:"memory" desc:"tenant consumers' state: memory (the default: no state file written per delivery; a restarted nats-server forgets the consumers and the worker lanes make them again, with their pauses and the jobs' attempt counts from orgdispatch's own records), or file"`

	AuditMaxAge  time.Duration `envconfig:"AUDIT_MAX_AGE" default:"2160h" desc:"how long audit records are kept (the audit stream drops older ones)"`
	AuditMaxMsgs int64         `envconfig:"AUDIT_MAX_MSGS" default:"100000" desc:"most audit records kept (the oldest go first)"`

	ReplicaID       string        `envconfig:"REPLICA_ID" desc:"this worker replica's id; default hostname-pid"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"10s" desc:"how long in-flight jobs may finish on shutdown before they are handed back"`

	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"text" desc:"text or json"`
}

// Secret is a setting that never prints: String, GoString, LogValue and
// MarshalText redact it. Reveal returns the value.
type Secret string

// Reveal returns the secret's value, for the one place that compares it.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer: "[redacted]", or "" when empty.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (used by JSON encoding).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Load reads the configuration from the environment, applies defaults and
// validates it.
func Load() (Config, error) {
	var c Config
	if err := envconfig.Process(EnvPrefix, &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			// Name the variable and the expected form; the value is left out
			// because it might be a secret pasted into the wrong variable.
			return Config{}, fmt.Errorf("config: %s: cannot parse as %s", pe.KeyName, typeHint(pe.TypeName))
		}
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if c.ReplicaID == "" {
		c.ReplicaID = DefaultReplicaID()
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func typeHint(typeName string) string {
	switch typeName {
	case "time.Duration":
		return "a duration (e.g. 10s, 1m30s)"
	case "int":
		return "an integer"
	}
	return typeName
}

// Unknown lists the ORGDISPATCH_* variables set in the environment that
// orgdispatch does not read — usually misspellings. Commands log them as
// warnings.
func Unknown() []string {
	known := map[string]bool{}
	for _, k := range Keys() {
		known[k] = true
	}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, EnvPrefix+"_") && !known[k] {
			out = append(out, k)
		}
	}
	return out
}

// Keys lists every environment variable orgdispatch reads, in table order.
func Keys() []string {
	var b strings.Builder
	if err := envconfig.Usagef(EnvPrefix, &Config{}, &b, "{{range .}}{{usage_key .}}\n{{end}}"); err != nil {
		panic(err) // the template and the struct are constants
	}
	return strings.Fields(b.String())
}

// usageFormat is the reference table's template (envconfig.Usagef).
const usageFormat = `orgdispatch reads these environment variables:

VARIABLE	DEFAULT	DESCRIPTION
{{range .}}{{usage_key .}}	{{usage_default .}}	{{usage_description .}}
{{end}}`

// Usage writes the reference table of environment variables to w (for
// `orgdispatch help env` and the commands' -h).
func Usage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 1, 0, 2, ' ', 0)
	if err := envconfig.Usagef(EnvPrefix, &Config{}, tw, usageFormat); err != nil {
		return fmt.Errorf("config: usage: %w", err)
	}
	return tw.Flush()
}

// DefaultReplicaID is hostname-pid, e.g. worker-7f9c-4711, made safe for a
// KV key.
func DefaultReplicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "orgdispatch"
	}
	id := invalidReplicaRune.ReplaceAllString(host, "_") + "-" + strconv.Itoa(os.Getpid())
	if len(id) > 128 {
		id = id[len(id)-128:]
	}
	return id
}

var (
	invalidReplicaRune = regexp.MustCompile(`[^A-Za-z0-9_=.-]`)
	replicaIDRE        = regexp.MustCompile(`^[A-Za-z0-9_=-]([A-Za-z0-9_=.-]{0,126}[A-Za-z0-9_=-])?$`)
)

func key(name string) string { return EnvPrefix + "_" + name }

// Validate checks every setting and returns all problems at once, each
// naming its variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key(name), fmt.Sprintf(format, args...)))
	}

	if c.NATSURL != "" {
		for _, u := range strings.Split(c.NATSURL, ",") {
			if err := checkNATSURL(strings.TrimSpace(u)); err != nil {
				bad("NATS_URL", "%v", err)
			}
		}
	} else {
		for name, v := range map[string]string{"NATS_CREDS": c.NATSCreds, "NATS_TLS_CA": c.NATSTLSCA, "NATS_TLS_CERT": c.NATSTLSCert, "NATS_TLS_KEY": c.NATSTLSKey} {
			if v != "" {
				bad(name, "applies to an external server only, but ORGDISPATCH_NATS_URL is empty (embedded server)")
			}
		}
	}
	if p := c.NATSInboxPrefix; p != "" && (strings.ContainsAny(p, " \t*>") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".")) {
		bad("NATS_INBOX_PREFIX", "%q: want a subject prefix without wildcards, spaces or a leading or trailing dot", p)
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		bad("NATS_TLS_CERT", "set it together with ORGDISPATCH_NATS_TLS_KEY, or neither")
	}
	if c.NATSListen != ListenOff {
		if _, _, err := splitListen(c.NATSListen); err != nil {
			bad("NATS_LISTEN", "%v (or %q to not listen)", err, ListenOff)
		}
	}
	if c.StoreDir == "" {
		bad("STORE_DIR", "must not be empty")
	}
	if _, err := dispatcher.NewNames(c.Prefix); err != nil || c.Prefix == "" {
		bad("PREFIX", "%q: want 1-32 of a-z 0-9 _ - starting with a letter", c.Prefix)
	}
	if c.TenantsFile == "" {
		bad("TENANTS_FILE", "must not be empty")
	}
	if c.HTTPAddr != "" {
		if _, _, err := splitListen(c.HTTPAddr); err != nil {
			bad("HTTP_ADDR", "%v (or empty for no HTTP server)", err)
		}
	}
	for _, h := range c.HTTPHosts {
		if h = strings.TrimSpace(h); h == "" || strings.ContainsAny(h, "/ @?#") {
			bad("HTTP_HOSTS", "%q: want host names (or *), comma-separated", h)
		}
	}
	if c.APIURL != "" {
		if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("API_URL", "want an http:// or https:// URL with a host")
		}
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		bad("STREAM_REPLICAS", "%d: want 1 to 5", c.StreamReplicas)
	}
	if c.MaxConsumers < 1 {
		bad("MAX_CONSUMERS", "%d: want at least 1", c.MaxConsumers)
	}
	if _, err := ParseConsumerStorage(c.ConsumerStorage); err != nil {
		bad("CONSUMER_STORAGE", "%v", err)
	}
	if c.MetricsAuth && c.APIToken == "" && c.APITokensFile == "" {
		bad("METRICS_AUTH", "needs ORGDISPATCH_API_TOKEN or ORGDISPATCH_API_TOKENS_FILE (a token to present)")
	}
	if c.AuditMaxAge <= 0 {
		bad("AUDIT_MAX_AGE", "%s: want a positive duration", c.AuditMaxAge)
	}
	if c.AuditMaxMsgs < 1 {
		bad("AUDIT_MAX_MSGS", "%d: want at least 1", c.AuditMaxMsgs)
	}
	if !replicaIDRE.MatchString(c.ReplicaID) {
		bad("REPLICA_ID", "%q: want 1-128 of A-Z a-z 0-9 _ = - . not starting or ending with a dot", c.ReplicaID)
	}
	if c.ShutdownTimeout <= 0 {
		bad("SHUTDOWN_TIMEOUT", "%s: want a positive duration", c.ShutdownTimeout)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		bad("LOG_LEVEL", "%q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LOG_FORMAT", "%q: want text or json", c.LogFormat)
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// ParseConsumerStorage turns "file" or "memory" into the storage type of
// dispatcher.StreamConfig.ConsumerStorage.
func ParseConsumerStorage(s string) (jetstream.StorageType, error) {
	switch s {
	case "file":
		return jetstream.FileStorage, nil
	case "memory":
		return jetstream.MemoryStorage, nil
	default:
		return 0, fmt.Errorf("%q: want file or memory", s)
	}
}

// StreamConfig is the dispatcher.StreamConfig these settings ask for: pass it
// to dispatcher.Provision and dispatcher.EnsureConsumerWith. Call it on a
// validated Config (Load validates).
func (c Config) StreamConfig() dispatcher.StreamConfig {
	storage, _ := ParseConsumerStorage(c.ConsumerStorage)
	return dispatcher.StreamConfig{Replicas: c.StreamReplicas, MaxConsumers: c.MaxConsumers, ConsumerStorage: storage,
		AuditMaxAge: c.AuditMaxAge, AuditMaxMsgs: c.AuditMaxMsgs}
}

// checkNATSURL accepts nats://, tls://, ws:// and wss:// URLs with a host.
// Its errors show the URL without user information.
func checkNATSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", RedactURL(raw))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%q: want a nats://, tls://, ws:// or wss:// URL", RedactURL(raw))
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q names no host", RedactURL(raw))
	}
	return nil
}

// RedactURL returns the NATS URL(s) in raw with any user information (user,
// password or token) replaced by "redacted", for logs and errors.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		switch {
		case err == nil && u.User != nil:
			u.User = url.User("redacted")
			parts[i] = u.String()
		case err != nil && strings.Contains(p, "@"):
			// Unparseable but may hold credentials: keep only what follows the last @.
			parts[i] = "redacted@" + p[strings.LastIndex(p, "@")+1:]
		default:
			parts[i] = p
		}
	}
	return strings.Join(parts, ",")
}

// splitListen parses host:port; the host may be empty (all interfaces), the
// port 0 (random).
func splitListen(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q: want host:port", addr)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("%q: port must be 0-65535", addr)
	}
	return h, n, nil
}

// HTTPHostNames are the Host names the HTTP API answers to:
// ORGDISPATCH_HTTP_HOSTS, or else the loopback names and the host of
// ORGDISPATCH_HTTP_ADDR when it is a name.
func (c Config) HTTPHostNames() []string {
	if len(c.HTTPHosts) > 0 {
		out := make([]string, 0, len(c.HTTPHosts))
		for _, h := range c.HTTPHosts {
			out = append(out, strings.TrimSpace(h))
		}
		return out
	}
	out := []string{"localhost", "127.0.0.1", "::1"}
	if host, _, err := splitListen(c.HTTPAddr); err == nil && host != "" && net.ParseIP(host) == nil {
		out = append(out, host)
	}
	return out
}

// Names returns the NATS names for the configured prefix. Call it on a
// validated Config.
func (c Config) Names() dispatcher.Names { return dispatcher.MustNames(c.Prefix) }

// Embedded reports whether the process runs the embedded NATS server (no
// ORGDISPATCH_NATS_URL).
func (c Config) Embedded() bool { return c.NATSURL == "" }

// EmbeddedListen returns the embedded server's client host and port as
// internal/natsserver wants them: port -1 for a random port, 0 for not
// listening.
func (c Config) EmbeddedListen() (host string, port int) {
	if c.NATSListen == ListenOff {
		return "", 0
	}
	host, port, err := splitListen(c.NATSListen)
	if err != nil {
		return "", 0
	}
	if port == 0 {
		port = -1
	}
	return host, port
}

// ClientURL is where a command that does not run the server itself (publish,
// status, …) connects: ORGDISPATCH_NATS_URL, or else the embedded server's
// listener of a running serve (wildcard hosts become 127.0.0.1). It is ""
// when there is neither.
func (c Config) ClientURL() string {
	if c.NATSURL != "" {
		return c.NATSURL
	}
	if c.NATSListen == ListenOff {
		return ""
	}
	host, port, err := splitListen(c.NATSListen)
	if err != nil || port == 0 {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// LogValue implements slog.LogValuer: the settings worth logging at start,
// with the NATS URL redacted and the API token never shown.
func (c Config) LogValue() slog.Value {
	nats := "embedded"
	if c.NATSURL != "" {
		nats = RedactURL(c.NATSURL)
	}
	return slog.GroupValue(
		slog.String("nats", nats),
		slog.String("prefix", c.Prefix),
		slog.String("tenants_file", c.TenantsFile),
		slog.String("http_addr", c.HTTPAddr),
		slog.Bool("api_token_set", c.APIToken != ""),
		slog.String("api_tokens_file", c.APITokensFile),
		slog.Bool("metrics_auth", c.MetricsAuth),
		slog.String("http_hosts", strings.Join(c.HTTPHostNames(), ",")),
		slog.String("replica", c.ReplicaID),
	)
}
