package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// Right is one kind of thing an API token may do.
type Right string

// The rights a token can hold. Each is limited to the token's tenants.
const (
	// RightPublish: POST /v1/jobs for the token's tenants.
	RightPublish Right = "publish"
	// RightRead: GET the token's tenants, their jobs, dead letters and
	// audit records.
	RightRead Right = "read"
	// RightPause: pause and resume the token's tenants.
	RightPause Right = "pause"
	// RightDLQ: replay and delete the token's tenants' dead letters.
	RightDLQ Right = "dlq"
	// RightMetrics: GET /metrics when Config.MetricsAuth is set (the
	// metrics name every tenant).
	RightMetrics Right = "metrics"
)

// AllRights lists every right, the rights of ORGDISPATCH_API_TOKEN.
var AllRights = []Right{RightPublish, RightRead, RightPause, RightDLQ, RightMetrics}

// AllTenants in Token.Tenants gives a token every tenant, present and
// future.
const AllTenants = "*"

// LegacyTokenName names Config.Token (ORGDISPATCH_API_TOKEN) in logs and
// the audit trail.
const LegacyTokenName = "api-token"

// Token is one API token: a name that logs and the audit trail show, the
// secret a client sends as its bearer token, and its scope.
type Token struct {
	// Name identifies the token: 1-64 of A-Z a-z 0-9 _ . -.
	Name string
	// Secret is the bearer token. Surrounding white space is ignored; it
	// must not be blank or a placeholder.
	Secret string
	// Tenants are the tenant ids the token may act on; AllTenants for all.
	Tenants []string
	// Rights are what it may do on them.
	Rights []Right
}

// Tokens is an immutable set of API tokens. Build it with NewTokens or
// LoadTokens.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	scope  *scope
}

// scope is what the token of a request may do.
type scope struct {
	name    string
	all     bool
	tenants map[string]bool
	rights  map[Right]bool
}

// fullScope is the scope of every request when no token is configured.
var fullScope = newScope("anonymous", []string{AllTenants}, AllRights)

func newScope(name string, tenants []string, rights []Right) *scope {
	sc := &scope{name: name, tenants: map[string]bool{}, rights: map[Right]bool{}}
	for _, t := range tenants {
		if t == AllTenants {
			sc.all = true
		} else {
			sc.tenants[t] = true
		}
	}
	for _, r := range rights {
		sc.rights[r] = true
	}
	return sc
}

func (sc *scope) may(r Right) bool { return sc.rights[r] }

func (sc *scope) tenant(id string) bool { return sc.all || sc.tenants[id] }

// only is the scope's one tenant, when it has exactly one.
func (sc *scope) only() (string, bool) {
	if sc.all || len(sc.tenants) != 1 {
		return "", false
	}
	for t := range sc.tenants {
		return t, true
	}
	return "", false
}

func (sc *scope) tenantList() string {
	if sc.all {
		return AllTenants
	}
	ts := make([]string, 0, len(sc.tenants))
	for t := range sc.tenants {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return strings.Join(ts, ",")
}

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ErrPlaceholderToken is the error for a token that is an example's
// placeholder (such as deploy/k8s's REPLACE-WITH-A-LONG-RANDOM-TOKEN):
// applied unchanged, it would let anyone who read the example in.
var ErrPlaceholderToken = errors.New("is a placeholder: generate a long random token (e.g. openssl rand -hex 32)")

// IsPlaceholder reports whether a secret is an example's placeholder.
func IsPlaceholder(secret string) bool {
	s := strings.ToUpper(secret)
	return strings.Contains(s, "REPLACE-WITH") || strings.Contains(s, "REPLACE_WITH") || strings.Contains(s, "CHANGEME")
}

// NewTokens validates ts and builds the set. Names and secrets must be
// unique; errors name the token, never show a secret.
func NewTokens(ts ...Token) (*Tokens, error) {
	var errs []error
	names := map[string]bool{}
	secrets := map[[sha256.Size]byte]string{}
	set := &Tokens{}
	for i, t := range ts {
		label := fmt.Sprintf("token %d", i)
		if t.Name != "" {
			label = fmt.Sprintf("token %q", t.Name)
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", label, fmt.Sprintf(format, args...)))
		}
		wrap := func(what string, err error) { errs = append(errs, fmt.Errorf("%s: %s %w", label, what, err)) }
		if !tokenNameRE.MatchString(t.Name) {
			bad("name: want 1-64 of A-Z a-z 0-9 _ . -")
		} else if names[t.Name] {
			bad("name used twice")
		}
		names[t.Name] = true
		secret := strings.TrimSpace(t.Secret)
		switch {
		case secret == "":
			bad("the token is empty")
		case IsPlaceholder(secret):
			wrap("the token", ErrPlaceholderToken)
		}
		digest := sha256.Sum256([]byte(secret))
		if other, dup := secrets[digest]; dup && secret != "" {
			bad("same token as %q", other)
		}
		secrets[digest] = t.Name
		if len(t.Tenants) == 0 {
			bad(`tenants: want tenant ids, or ["*"] for all`)
		}
		for _, id := range t.Tenants {
			if id != AllTenants && !dispatcher.ValidTenantID(id) {
				bad("tenants: %q is not a tenant id", id)
			}
		}
		if len(t.Rights) == 0 {
			bad("rights: want some of %s", rightList())
		}
		for _, r := range t.Rights {
			if !slices.Contains(AllRights, r) {
				bad("rights: unknown right %q (want %s)", r, rightList())
			}
		}
		set.entries = append(set.entries, tokenEntry{digest: digest, scope: newScope(t.Name, t.Tenants, t.Rights)})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("api tokens: %w", err)
	}
	return set, nil
}

func rightList() string {
	s := make([]string, len(AllRights))
	for i, r := range AllRights {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Names lists the tokens' names, sorted.
func (t *Tokens) Names() []string {
	if t == nil {
		return nil
	}
	out := make([]string, len(t.entries))
	for i, e := range t.entries {
		out[i] = e.scope.name
	}
	sort.Strings(out)
	return out
}

// fingerprint identifies a set by its tokens' digests and scopes (it
// changes when any token or scope does), without revealing a secret.
func (t *Tokens) fingerprint() [sha256.Size]byte {
	h := sha256.New()
	if t != nil {
		for _, e := range t.entries {
			h.Write(e.digest[:])
			fmt.Fprintf(h, "%s|%s|%v\n", e.scope.name, e.scope.tenantList(), sortedRights(e.scope))
		}
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}

func sortedRights(sc *scope) []string {
	var rs []string
	for r := range sc.rights {
		rs = append(rs, string(r))
	}
	sort.Strings(rs)
	return rs
}

// with returns a set of t's tokens and more's (nil sets are empty).
func (t *Tokens) with(more *Tokens) *Tokens {
	out := &Tokens{}
	if t != nil {
		out.entries = append(out.entries, t.entries...)
	}
	if more != nil {
		out.entries = append(out.entries, more.entries...)
	}
	return out
}

// lookup finds the token whose secret is cred. It compares SHA-256 digests
// in constant time against every token, without stopping at a match, so
// neither the time taken nor which token matched leaks.
func (t *Tokens) lookup(cred string) (*scope, bool) {
	got := sha256.Sum256([]byte(cred))
	var found *scope
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(got[:], e.digest[:]) == 1 {
			found = e.scope
		}
	}
	return found, found != nil
}

// tokensFile is the YAML form of a tokens file.
type tokensFile struct {
	Tokens []tokenFileEntry `yaml:"tokens"`
}

type tokenFileEntry struct {
	Name      string   `yaml:"name"`
	TokenEnv  string   `yaml:"token_env"`
	TokenFile string   `yaml:"token_file"`
	Tenants   []string `yaml:"tenants"`
	Rights    []Right  `yaml:"rights"`
}

// LoadTokens reads a tokens file (ORGDISPATCH_API_TOKENS_FILE):
//
//	tokens:
//	  - name: crm-eu                # shown in logs and the audit trail
//	    token_env: CRM_EU_API_TOKEN # the token, from this variable...
//	    tenants: [org_1, org_2]     # or ["*"]: every tenant
//	    rights: [publish, read]     # publish, read, pause, dlq, metrics
//	  - name: dashboard
//	    token_file: /run/secrets/dashboard-token   # ...or from this file
//	    tenants: ["*"]
//	    rights: [read]
//
// Decoding is strict: an unknown or misspelt key is an error. A token is
// never written in the file itself.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api tokens: %w", err)
	}
	return ParseTokens(data, os.LookupEnv, os.ReadFile)
}

// ParseTokens is LoadTokens of data, with the environment and the file
// system given (for tests).
func ParseTokens(data []byte, env func(string) (string, bool), readFile func(string) ([]byte, error)) (*Tokens, error) {
	var f tokensFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("api tokens: %w", err)
	}
	if len(f.Tokens) == 0 {
		return nil, errors.New("api tokens: the file lists no tokens")
	}
	var errs []error
	ts := make([]Token, 0, len(f.Tokens))
	for i, e := range f.Tokens {
		label := fmt.Sprintf("token %d", i)
		if e.Name != "" {
			label = fmt.Sprintf("token %q", e.Name)
		}
		var secret string
		switch {
		case (e.TokenEnv == "") == (e.TokenFile == ""):
			errs = append(errs, fmt.Errorf("%s: set exactly one of token_env and token_file", label))
		case e.TokenEnv != "":
			v, ok := env(e.TokenEnv)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: token_env: %s is not set", label, e.TokenEnv))
			}
			secret = v
		default:
			b, err := readFile(e.TokenFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: token_file: %w", label, err))
			}
			secret = string(b)
		}
		ts = append(ts, Token{Name: e.Name, Secret: secret, Tenants: e.Tenants, Rights: e.Rights})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("api tokens: %w", err)
	}
	return NewTokens(ts...)
}
