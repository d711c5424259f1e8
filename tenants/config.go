package tenants

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/orgdispatch/orgdispatch/platform"
)

// Defaults applied to every tenant unless the file's defaults block or the
// tenant itself says otherwise.
const (
	DefaultRegion        = "us-east-1"
	DefaultRatePerMinute = 300
	DefaultBurst         = 1
	DefaultConcurrency   = 4
	DefaultMaxAttempts   = 10
	// DefaultMaxBacklog is how many of a tenant's jobs may be queued (not
	// yet finished) before its publishes are refused: at the default quota
	// of 300 requests a minute, some 5½ hours of work.
	DefaultMaxBacklog = 100_000
	DefaultQuotaScope = ScopeToken
)

// Limits of the numeric settings.
const (
	MaxRatePerMinute = 100_000
	MaxConcurrency   = 1000
	MaxAttemptsLimit = 100
	MaxBacklogLimit  = 10_000_000
)

// Values of the rate setting.
const (
	// RateAuto learns the quota from what the platform gives — the org's
	// limits API and each 429's limit object — starting from rate_per_minute.
	RateAuto = "auto"
	// RateFixed paces at rate_per_minute (the default).
	RateFixed = "fixed"
)

// File is a parsed, validated tenants file.
type File struct {
	// Tenants in file order, fully resolved.
	Tenants []Tenant
}

// Get returns (a copy of) the tenant with the given id.
func (f *File) Get(id string) (Tenant, bool) {
	for _, t := range f.Tenants {
		if t.ID == id {
			t.AllowedPaths = slices.Clone(t.AllowedPaths)
			return t, true
		}
	}
	return Tenant{}, false
}

// FieldError is one problem found in a tenants file. Parse and Load return all
// of them at once, joined with errors.Join; errors.As finds the first.
type FieldError struct {
	// Tenant is the id of the tenant the problem belongs to; "" for the
	// defaults block, the top level, or a tenant without a usable id.
	Tenant string
	// Where is "defaults", "tenants[3] (org_1)", "tenants[3]" or "" (top level).
	Where string
	// Msg says what is wrong, naming the key, e.g. `unknown field "rate"`.
	// It never contains a secret.
	Msg string
	// Line is the line in the file, or 0 when unknown.
	Line int
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Where != "" {
		b.WriteString(e.Where)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// settings are the keys both the defaults block and a tenant may set.
type settings struct {
	Region        *string   `yaml:"region"`
	RatePerMinute *int      `yaml:"rate_per_minute"`
	Rate          *string   `yaml:"rate"`
	Burst         *int      `yaml:"burst"`
	Concurrency   *int      `yaml:"concurrency"`
	MaxAttempts   *int      `yaml:"max_attempts"`
	MaxBacklog    *int      `yaml:"max_backlog"`
	QuotaScope    *string   `yaml:"quota_scope"`
	AllowedPaths  *[]string `yaml:"allowed_paths"`
}

type rawTenant struct {
	ID               *string `yaml:"id"`
	ClientID         *string `yaml:"client_id"`
	ClientSecretEnv  *string `yaml:"client_secret_env"`
	ClientSecretFile *string `yaml:"client_secret_file"`
	ClientSecret     *string `yaml:"client_secret" redact:"true"`
	APIBase          *string `yaml:"api_base"`
	TokenURL         *string `yaml:"token_url"`
	settings         `yaml:",inline"`
}

var (
	settingsFields = newFieldSet(settings{})
	tenantFields   = newFieldSet(rawTenant{})
)

// Load reads and parses the tenants file at path, taking client secrets from
// the environment (client_secret_env) and the file system
// (client_secret_file).
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	f, err := Parse(data, os.LookupEnv, os.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("tenants file %s:\n%w", path, err)
	}
	return f, nil
}

// Parse decodes and validates a tenants file. env looks up environment
// variables (os.LookupEnv) and readFile reads secret files (os.ReadFile).
// Every problem found is reported, each as a *FieldError, joined with
// errors.Join.
func Parse(data []byte, env func(string) (string, bool), readFile func(string) ([]byte, error)) (*File, error) {
	p := parser{env: env, readFile: readFile}
	f := p.parse(data)
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return f, nil
}

type parser struct {
	env      func(string) (string, bool)
	readFile func(string) ([]byte, error)
	errs     []error
}

func (p *parser) errorf(where, tenant string, line int, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Tenant: tenant, Where: where, Msg: fmt.Sprintf(format, args...), Line: line})
}

func (p *parser) parse(data []byte) *File {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf("", "", 0, "empty file: want defaults and tenants")
		} else {
			p.errorf("", "", 0, "%v", err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.errorf("", "", extra.Line, "more than one YAML document")
		return nil
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		p.errorf("", "", root.Line, "want a mapping with defaults and tenants, got %s", describe(root))
		return nil
	}
	var defaultsNode, tenantsNode *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			p.errorf("", "", k.Line, "%s: set twice", k.Value)
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "defaults":
			defaultsNode = v
		case "tenants":
			tenantsNode = v
		default:
			p.errorf("", "", k.Line, "unknown field %q: want defaults and tenants", k.Value)
		}
	}

	var defaults settings
	if defaultsNode != nil {
		settingsFields.decodeMapping(defaultsNode, &defaults, func(line int, msg string) {
			p.errorf("defaults", "", line, "%s", msg)
		})
		p.checkSettings("defaults", "", defaults, defaultsNode.Line)
	}
	if tenantsNode == nil {
		p.errorf("", "", root.Line, "no tenants: want a tenants list")
		return nil
	}
	tenantsNode = resolve(tenantsNode)
	if tenantsNode.Kind != yaml.SequenceNode {
		p.errorf("", "", tenantsNode.Line, "tenants: want a list, got %s", describe(tenantsNode))
		return nil
	}
	if len(tenantsNode.Content) == 0 {
		p.errorf("", "", tenantsNode.Line, "tenants: the list is empty")
		return nil
	}

	f := &File{Tenants: make([]Tenant, 0, len(tenantsNode.Content))}
	ids := map[string]int{}
	for i, n := range tenantsNode.Content {
		type problem struct {
			line int
			msg  string
		}
		var rt rawTenant
		var decodeProblems []problem
		isMapping := tenantFields.decodeMapping(n, &rt, func(line int, msg string) {
			decodeProblems = append(decodeProblems, problem{line, msg})
		})
		where, id := fmt.Sprintf("tenants[%d]", i), ""
		if rt.ID != nil && ValidID(*rt.ID) {
			id = *rt.ID
			where += " (" + id + ")"
		}
		for _, pr := range decodeProblems {
			p.errorf(where, id, pr.line, "%s", pr.msg)
		}
		if !isMapping {
			continue
		}
		if id != "" {
			if j, dup := ids[id]; dup {
				p.errorf(where, id, n.Line, "duplicate id: tenants[%d] has the same id", j)
			} else {
				ids[id] = i
			}
		}
		if t, ok := p.resolveTenant(where, id, n.Line, rt, defaults); ok {
			f.Tenants = append(f.Tenants, t)
		}
	}
	return f
}

// checkSettings validates the settings a block sets itself (inherited values
// were checked where they were set).
func (p *parser) checkSettings(where, id string, s settings, line int) {
	bad := func(format string, args ...any) { p.errorf(where, id, line, format, args...) }
	if s.Region != nil {
		if _, _, err := platform.Endpoints(*s.Region); err != nil {
			bad("region: %v", err)
		}
	}
	if s.RatePerMinute != nil && (*s.RatePerMinute < 1 || *s.RatePerMinute > MaxRatePerMinute) {
		bad("rate_per_minute: want 1..%d, got %d", MaxRatePerMinute, *s.RatePerMinute)
	}
	if s.Rate != nil && *s.Rate != RateAuto && *s.Rate != RateFixed {
		bad("rate: want %q or %q, got %q", RateAuto, RateFixed, *s.Rate)
	}
	if s.Burst != nil && (*s.Burst < 1 || *s.Burst > MaxRatePerMinute) {
		bad("burst: want 1..%d, got %d", MaxRatePerMinute, *s.Burst)
	}
	if s.Concurrency != nil && (*s.Concurrency < 1 || *s.Concurrency > MaxConcurrency) {
		bad("concurrency: want 1..%d, got %d", MaxConcurrency, *s.Concurrency)
	}
	if s.MaxAttempts != nil && (*s.MaxAttempts < 1 || *s.MaxAttempts > MaxAttemptsLimit) {
		bad("max_attempts: want 1..%d, got %d", MaxAttemptsLimit, *s.MaxAttempts)
	}
	if s.MaxBacklog != nil && (*s.MaxBacklog < 1 || *s.MaxBacklog > MaxBacklogLimit) {
		bad("max_backlog: want 1..%d, got %d", MaxBacklogLimit, *s.MaxBacklog)
	}
	if s.QuotaScope != nil && *s.QuotaScope != ScopeOrg && *s.QuotaScope != ScopeToken {
		bad("quota_scope: want %q or %q, got %q", ScopeOrg, ScopeToken, *s.QuotaScope)
	}
	if s.AllowedPaths != nil {
		if len(*s.AllowedPaths) == 0 {
			bad("allowed_paths: empty list (omit it for the default %v)", platform.DefaultAllowedPathPrefixes)
		}
		for _, prefix := range *s.AllowedPaths {
			if err := checkPathPrefix(prefix); err != nil {
				bad("allowed_paths: %q: %v", prefix, err)
			}
		}
	}
}

// checkPathPrefix checks an api.request allow-list entry: an absolute path
// ending in a slash, so that "/api/v2/outbound/" cannot match
// "/api/v2/outboundx".
func checkPathPrefix(prefix string) error {
	switch {
	case !strings.HasPrefix(prefix, "/"):
		return errors.New("want a path starting with /")
	case !strings.HasSuffix(prefix, "/"):
		return errors.New("want a path ending with /")
	case strings.Contains(prefix, "//"), strings.Contains(prefix, "/./"), strings.Contains(prefix, "/../"):
		return errors.New("want a clean path (no //, /./ or /../)")
	case strings.ContainsAny(prefix, "?#%\\ \t\r\n"):
		return errors.New("want a plain path (no query, fragment, escapes or spaces)")
	}
	return nil
}

func (p *parser) resolveTenant(where, id string, line int, rt rawTenant, d settings) (Tenant, bool) {
	before := len(p.errs)
	bad := func(format string, args ...any) { p.errorf(where, id, line, format, args...) }

	if rt.ID == nil {
		bad("id is required")
	} else if !ValidID(*rt.ID) {
		bad("id %q: want 1-64 of A-Z a-z 0-9 _ -", *rt.ID)
	}
	t := Tenant{ID: id}
	if rt.ClientID == nil || strings.TrimSpace(*rt.ClientID) == "" {
		bad("client_id is required")
	} else {
		t.ClientID = *rt.ClientID
	}
	t.ClientSecret = p.secret(where, id, line, rt)

	p.checkSettings(where, id, rt.settings, line)
	s := merge(rt.settings, d)

	switch {
	case rt.APIBase != nil && rt.TokenURL != nil:
		base, err := checkURL(*rt.APIBase, false)
		if err != nil {
			bad("api_base %q: %v", *rt.APIBase, err)
		}
		tok, err := checkURL(*rt.TokenURL, true)
		if err != nil {
			bad("token_url %q: %v", *rt.TokenURL, err)
		}
		t.APIBase, t.TokenURL = base, tok
	case rt.APIBase != nil || rt.TokenURL != nil:
		bad("api_base and token_url must be set together (or neither, to use the region)")
	default:
		// A bad region was reported by checkSettings: the tenant's own here,
		// an inherited one once, in defaults.
		t.Region = *s.Region
		t.APIBase, t.TokenURL, _ = platform.Endpoints(t.Region)
	}

	t.RatePerMinute = *s.RatePerMinute
	t.RateAuto = *s.Rate == RateAuto
	t.Burst = *s.Burst
	t.Concurrency = *s.Concurrency
	t.MaxAttempts = *s.MaxAttempts
	t.MaxBacklog = *s.MaxBacklog
	t.QuotaScope = *s.QuotaScope
	t.AllowedPaths = append([]string(nil), (*s.AllowedPaths)...)
	return t, len(p.errs) == before
}

// merge fills the keys s does not set from d, then from the built-in defaults.
func merge(s, d settings) settings {
	pick := func(dst **string, from *string, def string) {
		if *dst == nil {
			*dst = from
		}
		if *dst == nil {
			*dst = &def
		}
	}
	pickInt := func(dst **int, from *int, def int) {
		if *dst == nil {
			*dst = from
		}
		if *dst == nil {
			*dst = &def
		}
	}
	pick(&s.Region, d.Region, DefaultRegion)
	pick(&s.Rate, d.Rate, RateFixed)
	pick(&s.QuotaScope, d.QuotaScope, DefaultQuotaScope)
	pickInt(&s.RatePerMinute, d.RatePerMinute, DefaultRatePerMinute)
	pickInt(&s.Burst, d.Burst, DefaultBurst)
	pickInt(&s.Concurrency, d.Concurrency, DefaultConcurrency)
	pickInt(&s.MaxAttempts, d.MaxAttempts, DefaultMaxAttempts)
	pickInt(&s.MaxBacklog, d.MaxBacklog, DefaultMaxBacklog)
	if s.AllowedPaths == nil {
		s.AllowedPaths = d.AllowedPaths
	}
	if s.AllowedPaths == nil {
		def := append([]string(nil), platform.DefaultAllowedPathPrefixes...)
		s.AllowedPaths = &def
	}
	return s
}

// checkURL checks an explicit endpoint: absolute http(s) URL with a host, no
// query, fragment or credentials. The API base loses a trailing slash.
func checkURL(raw string, isTokenURL bool) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", errors.New("not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return "", errors.New("want an http:// or https:// URL")
	case u.Host == "":
		return "", errors.New("want a URL with a host")
	case u.User != nil:
		return "", errors.New("credentials do not belong in the URL")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", errors.New("want a URL without query or fragment")
	}
	if isTokenURL {
		return raw, nil
	}
	return strings.TrimRight(raw, "/"), nil
}

// secret reads the tenant's client secret from exactly one of its sources.
// Messages name the variable or file, never the value.
func (p *parser) secret(where, id string, line int, rt rawTenant) Secret {
	bad := func(format string, args ...any) { p.errorf(where, id, line, format, args...) }
	var set []string
	if rt.ClientSecretEnv != nil {
		set = append(set, "client_secret_env")
	}
	if rt.ClientSecretFile != nil {
		set = append(set, "client_secret_file")
	}
	if rt.ClientSecret != nil {
		set = append(set, "client_secret")
	}
	switch len(set) {
	case 0:
		bad("no client secret: set one of client_secret_env, client_secret_file, client_secret")
		return Secret{}
	case 1:
	default:
		both := "both"
		if len(set) > 2 {
			both = "all"
		}
		bad("%s are %s set: set exactly one", strings.Join(set, " and "), both)
		return Secret{}
	}
	switch {
	case rt.ClientSecretEnv != nil:
		name := *rt.ClientSecretEnv
		if name == "" {
			bad("client_secret_env: empty variable name")
			return Secret{}
		}
		v, ok := p.env(name)
		if !ok {
			bad("client_secret_env: environment variable %s is not set", name)
			return Secret{}
		}
		if strings.TrimSpace(v) == "" {
			bad("client_secret_env: environment variable %s is empty", name)
			return Secret{}
		}
		return NewSecret(v)
	case rt.ClientSecretFile != nil:
		path := *rt.ClientSecretFile
		if path == "" {
			bad("client_secret_file: empty path")
			return Secret{}
		}
		data, err := p.readFile(path)
		if err != nil {
			bad("client_secret_file %s: cannot read: %v", path, redactErr(err))
			return Secret{}
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if strings.TrimSpace(v) == "" {
			bad("client_secret_file %s is empty", path)
			return Secret{}
		}
		return NewSecret(v)
	default:
		if strings.TrimSpace(*rt.ClientSecret) == "" {
			bad("client_secret is empty")
			return Secret{}
		}
		return NewSecret(*rt.ClientSecret)
	}
}

// redactErr keeps the reason of a file error (e.g. "permission denied") and
// drops anything else a custom readFile might have put in it.
func redactErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return errors.New("read failed")
}
