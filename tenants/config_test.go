package tenants

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/orgdispatch/orgdispatch/platform"
)

// fixtures for Parse: environment variables and secret files.
var (
	testEnv = map[string]string{
		"ORG1_SECRET": "env-secret-1",
		"ORG2_SECRET": "env-secret-2",
		"EMPTY":       "",
		"BLANK":       "  ",
	}
	testFiles = map[string]string{
		"/run/secrets/org1":  "file-secret-1\n",
		"/run/secrets/crlf":  "file-secret-crlf\r\n",
		"/run/secrets/plain": "file-secret-plain",
		"/run/secrets/empty": "\n",
	}
)

func lookupEnv(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

func readFile(name string) ([]byte, error) {
	v, ok := testFiles[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(v), nil
}

func parse(t *testing.T, doc string) *File {
	t.Helper()
	f, err := Parse([]byte(doc), lookupEnv, readFile)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func defaultPaths() []string { return append([]string(nil), platform.DefaultAllowedPathPrefixes...) }

func TestParseDefaults(t *testing.T) {
	f := parse(t, `
tenants:
  - id: org_1
    client_id: client_org1
    client_secret_env: ORG1_SECRET
`)
	want := Tenant{
		ID:            "org_1",
		ClientID:      "client_org1",
		ClientSecret:  NewSecret("env-secret-1"),
		Region:        "us-east-1",
		APIBase:       "https://api.mypurecloud.com",
		TokenURL:      "https://login.mypurecloud.com/oauth/token",
		RatePerMinute: 300,
		Burst:         1,
		Concurrency:   4,
		MaxAttempts:   10,
		MaxBacklog:    DefaultMaxBacklog,
		QuotaScope:    ScopeToken,
		AllowedPaths:  defaultPaths(),
	}
	if len(f.Tenants) != 1 || !reflect.DeepEqual(f.Tenants[0], want) {
		t.Fatalf("got %+v\nwant %+v", f.Tenants, want)
	}
	if f.Tenants[0].ClientSecret.Reveal() != "env-secret-1" {
		t.Fatal("secret not read from the environment")
	}
	if err := f.Tenants[0].Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestParseDefaultsBlockAndOverrides(t *testing.T) {
	f := parse(t, `
defaults:
  region: eu-west-1
  rate_per_minute: 180
  rate: auto
  burst: 3
  concurrency: 8
  max_attempts: 5
  max_backlog: 2000
  quota_scope: token
  allowed_paths: [/api/v2/outbound/, /api/v2/routing/]
tenants:
  - id: a
    client_id: ca
    client_secret_file: /run/secrets/org1
  - id: b
    client_id: cb
    client_secret: inline-b
    region: ap-southeast-2
    rate_per_minute: 600
    rate: fixed
    burst: 2
    concurrency: 1
    max_attempts: 100
    max_backlog: 50
    quota_scope: org
    allowed_paths: [/api/v2/outbound/campaigns/]
`)
	a, ok := f.Get("a")
	if !ok {
		t.Fatal("Get(a) not found")
	}
	wantA := Tenant{
		ID: "a", ClientID: "ca", ClientSecret: NewSecret("file-secret-1"),
		Region: "eu-west-1", APIBase: "https://api.mypurecloud.ie", TokenURL: "https://login.mypurecloud.ie/oauth/token",
		RatePerMinute: 180, RateAuto: true, Burst: 3, Concurrency: 8, MaxAttempts: 5, MaxBacklog: 2000, QuotaScope: ScopeToken,
		AllowedPaths: []string{"/api/v2/outbound/", "/api/v2/routing/"},
	}
	if !reflect.DeepEqual(a, wantA) {
		t.Errorf("a = %+v\nwant %+v", a, wantA)
	}
	b, _ := f.Get("b")
	wantB := Tenant{
		ID: "b", ClientID: "cb", ClientSecret: NewSecret("inline-b"),
		Region: "ap-southeast-2", APIBase: "https://api.mypurecloud.com.au", TokenURL: "https://login.mypurecloud.com.au/oauth/token",
		RatePerMinute: 600, RateAuto: false, Burst: 2, Concurrency: 1, MaxAttempts: 100, MaxBacklog: 50, QuotaScope: ScopeOrg,
		AllowedPaths: []string{"/api/v2/outbound/campaigns/"},
	}
	if !reflect.DeepEqual(b, wantB) {
		t.Errorf("b = %+v\nwant %+v", b, wantB)
	}
	if _, ok := f.Get("c"); ok {
		t.Error("Get(c) found a tenant that does not exist")
	}
	// Get returns a copy.
	a.AllowedPaths[0] = "/changed/"
	if again, _ := f.Get("a"); again.AllowedPaths[0] != "/api/v2/outbound/" {
		t.Error("Get's AllowedPaths alias the file's")
	}
}

func TestParseTenantsDoNotShareSlices(t *testing.T) {
	f := parse(t, `
defaults: {allowed_paths: [/api/v2/outbound/]}
tenants:
  - {id: a, client_id: c, client_secret: s}
  - {id: b, client_id: c, client_secret: s}
  - {id: c, client_id: c, client_secret: s, allowed_paths: [/api/v2/x/]}
  - {id: d, client_id: c, client_secret: s, allowed_paths: [/api/v2/x/]}
  - {id: e, client_id: c, client_secret: s}
`)
	// a, b and e inherit the defaults' list; c and d set equal lists.
	f.Tenants[0].AllowedPaths[0] = "/changed/"
	f.Tenants[2].AllowedPaths[0] = "/changed/"
	if f.Tenants[1].AllowedPaths[0] != "/api/v2/outbound/" || f.Tenants[4].AllowedPaths[0] != "/api/v2/outbound/" {
		t.Error("tenants share the defaults' allowed_paths")
	}
	if f.Tenants[3].AllowedPaths[0] != "/api/v2/x/" {
		t.Error("tenants share allowed_paths")
	}
	before := slices.Clone(platform.DefaultAllowedPathPrefixes)
	g := parse(t, "tenants:\n  - {id: a, client_id: c, client_secret: s}\n")
	g.Tenants[0].AllowedPaths[0] = "/changed/"
	if !slices.Equal(platform.DefaultAllowedPathPrefixes, before) {
		t.Fatalf("a tenant aliases platform.DefaultAllowedPathPrefixes: %v", platform.DefaultAllowedPathPrefixes)
	}
}

func TestParseExplicitEndpoints(t *testing.T) {
	f := parse(t, `
tenants:
  - id: sim
    client_id: c
    client_secret: s
    region: eu-central-1           # ignored: api_base wins
    api_base: http://127.0.0.1:9090/
    token_url: http://127.0.0.1:9090/oauth/token
`)
	got := f.Tenants[0]
	if got.Region != "" || got.APIBase != "http://127.0.0.1:9090" || got.TokenURL != "http://127.0.0.1:9090/oauth/token" {
		t.Fatalf("endpoints = %q %q %q", got.Region, got.APIBase, got.TokenURL)
	}
}

func TestParseSecretFiles(t *testing.T) {
	for path, want := range map[string]string{
		"/run/secrets/org1":  "file-secret-1",
		"/run/secrets/crlf":  "file-secret-crlf",
		"/run/secrets/plain": "file-secret-plain",
	} {
		f := parse(t, "tenants: [{id: x, client_id: c, client_secret_file: "+path+"}]")
		if got := f.Tenants[0].ClientSecret.Reveal(); got != want {
			t.Errorf("%s: secret %q, want %q", path, got, want)
		}
	}
}

func TestParseMergeKeys(t *testing.T) {
	f := parse(t, `
tenants:
  - &sim
    id: one
    client_id: c1
    client_secret: s1
    api_base: http://127.0.0.1:9090
    token_url: http://127.0.0.1:9090/oauth/token
    concurrency: 7
  - <<: *sim
    id: two
    client_id: c2
    concurrency: 2
`)
	two, ok := f.Get("two")
	if !ok {
		t.Fatal("two missing")
	}
	if two.ClientID != "c2" || two.Concurrency != 2 || two.APIBase != "http://127.0.0.1:9090" || two.ClientSecret.Reveal() != "s1" {
		t.Fatalf("merged tenant = %+v", two)
	}
}

func TestParseMergedID(t *testing.T) {
	f := parse(t, `
tenants:
  - &one {id: one, client_id: c1, client_secret: s1}
  - {id: two, <<: *one}
  - {<<: *one, client_id: c3, id: three}
`)
	if len(f.Tenants) != 3 || f.Tenants[1].ID != "two" || f.Tenants[2].ClientID != "c3" {
		t.Fatalf("tenants = %+v", f.Tenants)
	}
	_, err := Parse([]byte("tenants:\n  - &one {id: one, client_id: c1, client_secret: s1}\n  - {<<: *one, burst: 0}\n"), lookupEnv, readFile)
	if err == nil || !strings.Contains(err.Error(), "tenants[1] (one): duplicate id") || !strings.Contains(err.Error(), "tenants[1] (one): burst: want 1..100000, got 0") {
		t.Fatalf("merged id not used in messages: %v", err)
	}
}

func TestParseMergeBomb(t *testing.T) {
	// Without memoisation this would decode 8^12 mappings.
	var b strings.Builder
	b.WriteString("tenants:\n  - &m0 {id: t0, client_id: c, client_secret: s}\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "  - &m%d {<<: [", i)
		for j := range 8 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		fmt.Fprintf(&b, "], id: t%d}\n", i)
	}
	f := parse(t, b.String())
	if len(f.Tenants) != 13 || f.Tenants[12].ClientID != "c" {
		t.Fatalf("parsed %d tenants", len(f.Tenants))
	}
}

func TestParseErrors(t *testing.T) {
	const okTenant = "  - {id: ok, client_id: c, client_secret: s}\n"
	for _, tc := range []struct {
		name string
		doc  string
		want []string // each must appear in the error, one per reported problem
	}{
		{"unknown tenant key", `
tenants:
  - {id: org_1, client_id: c, client_secret: s}
  - id: org_2
    client_id: c
    client_secret: s
    rate_per_minite: 100
`, []string{`tenants[1] (org_2): unknown field "rate_per_minite" (line 7)`}},
		{"unknown defaults key", "defaults: {concurency: 3}\ntenants:\n" + okTenant,
			[]string{`defaults: unknown field "concurency" (line 1)`}},
		{"unknown top-level key", "tenant:\n" + okTenant + "tenants:\n" + okTenant,
			[]string{`unknown field "tenant": want defaults and tenants`}},
		{"missing id", "tenants:\n  - {client_id: c, client_secret: s}\n",
			[]string{"tenants[0]: id is required"}},
		{"invalid id", "tenants:\n  - {id: org.1, client_id: c, client_secret: s}\n",
			[]string{`tenants[0]: id "org.1": want 1-64 of A-Z a-z 0-9 _ -`}},
		{"long id", "tenants:\n  - {id: " + strings.Repeat("a", 65) + ", client_id: c, client_secret: s}\n",
			[]string{`tenants[0]: id "aaaa`}},
		{"duplicate id", "tenants:\n" + okTenant + okTenant,
			[]string{"tenants[1] (ok): duplicate id: tenants[0] has the same id"}},
		{"missing client_id", "tenants:\n  - {id: a, client_secret: s}\n",
			[]string{"tenants[0] (a): client_id is required"}},
		{"no secret", "tenants:\n  - {id: a, client_id: c}\n",
			[]string{"tenants[0] (a): no client secret: set one of client_secret_env, client_secret_file, client_secret"}},
		{"two secrets", "tenants:\n  - {id: a, client_id: c, client_secret: s, client_secret_env: ORG1_SECRET}\n",
			[]string{"tenants[0] (a): client_secret_env and client_secret are both set: set exactly one"}},
		{"three secrets", "tenants:\n  - {id: a, client_id: c, client_secret: s, client_secret_env: X, client_secret_file: Y}\n",
			[]string{"client_secret_env and client_secret_file and client_secret are all set"}},
		{"env unset", "tenants:\n  - {id: a, client_id: c, client_secret_env: NOPE}\n",
			[]string{"tenants[0] (a): client_secret_env: environment variable NOPE is not set"}},
		{"env empty", "tenants:\n  - {id: a, client_id: c, client_secret_env: EMPTY}\n  - {id: b, client_id: c, client_secret_env: BLANK}\n",
			[]string{"tenants[0] (a): client_secret_env: environment variable EMPTY is empty",
				"tenants[1] (b): client_secret_env: environment variable BLANK is empty"}},
		{"env name empty", "tenants:\n  - {id: a, client_id: c, client_secret_env: ''}\n",
			[]string{"tenants[0] (a): client_secret_env: empty variable name"}},
		{"file missing", "tenants:\n  - {id: a, client_id: c, client_secret_file: /run/secrets/nope}\n",
			[]string{"tenants[0] (a): client_secret_file /run/secrets/nope: cannot read: file does not exist"}},
		{"file empty", "tenants:\n  - {id: a, client_id: c, client_secret_file: /run/secrets/empty}\n",
			[]string{"tenants[0] (a): client_secret_file /run/secrets/empty is empty"}},
		{"inline empty", "tenants:\n  - {id: a, client_id: c, client_secret: ''}\n",
			[]string{"tenants[0] (a): client_secret is empty"}},
		{"api_base alone", "tenants:\n  - {id: a, client_id: c, client_secret: s, api_base: 'http://x'}\n",
			[]string{"tenants[0] (a): api_base and token_url must be set together"}},
		{"token_url alone", "tenants:\n  - {id: a, client_id: c, client_secret: s, token_url: 'http://x/t'}\n",
			[]string{"tenants[0] (a): api_base and token_url must be set together"}},
		{"bad urls", "tenants:\n  - {id: a, client_id: c, client_secret: s, api_base: 'ftp://x', token_url: '/oauth/token'}\n",
			[]string{`tenants[0] (a): api_base "ftp://x": want an http:// or https:// URL`,
				`tenants[0] (a): token_url "/oauth/token": want an http:// or https:// URL`}},
		{"url with credentials and query", "tenants:\n  - {id: a, client_id: c, client_secret: s, api_base: 'https://u:p@x', token_url: 'https://x/t?a=1'}\n",
			[]string{"credentials do not belong in the URL", "want a URL without query or fragment"}},
		{"tenant region", "tenants:\n  - {id: a, client_id: c, client_secret: s, region: mars-1}\n",
			[]string{`tenants[0] (a): region: platform: unknown region "mars-1"`}},
		{"defaults region reported once", "defaults: {region: mars-1}\ntenants:\n  - {id: a, client_id: c, client_secret: s}\n  - {id: b, client_id: c, client_secret: s}\n",
			[]string{`defaults: region: platform: unknown region "mars-1"`}},
		{"ranges", "tenants:\n  - {id: a, client_id: c, client_secret: s, rate_per_minute: 0, burst: 0, concurrency: 1001, max_attempts: 101, max_backlog: 0}\n",
			[]string{"tenants[0] (a): rate_per_minute: want 1..100000, got 0",
				"tenants[0] (a): burst: want 1..100000, got 0",
				"tenants[0] (a): concurrency: want 1..1000, got 1001",
				"tenants[0] (a): max_attempts: want 1..100, got 101",
				"tenants[0] (a): max_backlog: want 1..10000000, got 0"}},
		{"ranges high and low", "defaults: {rate_per_minute: 100001, concurrency: 0, max_attempts: 0}\ntenants:\n" + okTenant,
			[]string{"defaults: rate_per_minute: want 1..100000, got 100001",
				"defaults: concurrency: want 1..1000, got 0",
				"defaults: max_attempts: want 1..100, got 0"}},
		{"enums", "tenants:\n  - {id: a, client_id: c, client_secret: s, quota_scope: replica, rate: fast}\n",
			[]string{`tenants[0] (a): rate: want "auto" or "fixed", got "fast"`,
				`tenants[0] (a): quota_scope: want "org" or "token", got "replica"`}},
		{"allowed_paths empty", "tenants:\n  - {id: a, client_id: c, client_secret: s, allowed_paths: []}\n",
			[]string{"tenants[0] (a): allowed_paths: empty list"}},
		{"allowed_paths bad", "tenants:\n  - {id: a, client_id: c, client_secret: s, allowed_paths: [api/v2/, /api/v2, /api/../x/, '/a?b/']}\n",
			[]string{`allowed_paths: "api/v2/": want a path starting with /`,
				`allowed_paths: "/api/v2": want a path ending with /`,
				`allowed_paths: "/api/../x/": want a clean path`,
				`allowed_paths: "/a?b/": want a plain path`}},
		{"wrong type", "tenants:\n  - {id: a, client_id: c, client_secret: s, concurrency: lots, allowed_paths: /x/}\n",
			[]string{`tenants[0] (a): concurrency: want an integer, got "lots" (line 2)`,
				`tenants[0] (a): allowed_paths: want a list of strings, got "/x/"`}},
		{"null value", "tenants:\n  - id: a\n    client_id: c\n    client_secret: s\n    burst:\n",
			[]string{"tenants[0] (a): burst: no value (line 5)"}},
		{"tenant not a mapping", "tenants:\n  - org_1\n",
			[]string{`tenants[0]: want a mapping of id, client_id`}},
		{"tenants not a list", "tenants: {id: a}\n", []string{"tenants: want a list, got a mapping"}},
		{"tenants empty", "tenants: []\n", []string{"tenants: the list is empty"}},
		{"no tenants", "defaults: {burst: 1}\n", []string{"no tenants: want a tenants list"}},
		{"empty file", "", []string{"empty file"}},
		{"comments only", "# nothing\n", []string{"empty file"}},
		{"not a mapping", "- a\n", []string{"want a mapping with defaults and tenants, got a list"}},
		{"two documents", "tenants:\n" + okTenant + "---\ntenants:\n" + okTenant, []string{"more than one YAML document"}},
		{"syntax", "tenants: [\n", []string{"yaml: line"}},
		{"duplicate key", "tenants:\n  - {id: a, client_id: c, client_secret: s, burst: 1, burst: 2}\n", []string{"tenants[0] (a): burst: set twice"}},
		{"duplicate top-level key", "tenants:\n" + okTenant + "tenants:\n" + okTenant, []string{"tenants: set twice"}},
		{"many problems at once", `
defaults: {burst: 0}
tenants:
  - {id: a, client_id: c, client_secret: s, conurrency: 2}
  - {id: b, client_id: c}
  - {id: a, client_id: c, client_secret: s}
`, []string{"defaults: burst: want 1..100000, got 0",
			`tenants[0] (a): unknown field "conurrency"`,
			"tenants[1] (b): no client secret",
			"tenants[2] (a): duplicate id: tenants[0] has the same id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.doc), lookupEnv, readFile)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", f)
			}
			if f != nil {
				t.Errorf("Parse returned a file with an error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q:\n%s", w, msg)
				}
			}
			if n := len(problems(err)); n != len(tc.want) {
				t.Errorf("%d problems reported, want %d:\n%s", n, len(tc.want), msg)
			}
		})
	}
}

// problems lists the *FieldErrors in err.
func problems(err error) []*FieldError {
	var out []*FieldError
	var fe *FieldError
	if errors.As(err, &fe) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				out = append(out, problems(e)...)
			}
			return out
		}
		return []*FieldError{fe}
	}
	return nil
}

func TestFieldErrorFields(t *testing.T) {
	_, err := Parse([]byte("tenants:\n  - {id: org_2, client_id: c, client_secret: s}\n  - {id: org_3, client_id: c, client_secret: s, rate_per_minite: 1}\n"), lookupEnv, readFile)
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("%v is not a *FieldError", err)
	}
	want := FieldError{Tenant: "org_3", Where: "tenants[1] (org_3)", Msg: `unknown field "rate_per_minite"`, Line: 3}
	if *fe != want {
		t.Fatalf("got %+v, want %+v", *fe, want)
	}
}

func TestParseErrorsNeverShowSecrets(t *testing.T) {
	const secret = "TopSecretValue42"
	testEnv["LEAKY"] = secret
	t.Cleanup(func() { delete(testEnv, "LEAKY") })
	leakyRead := func(name string) ([]byte, error) {
		return nil, errors.New("cannot parse " + secret) // a careless readFile
	}
	for _, doc := range []string{
		"tenants:\n  - {id: a, client_id: c, client_secret: " + secret + ", client_secret_env: LEAKY}\n",
		"tenants:\n  - {id: a, client_id: c, client_secret: [" + secret + "]}\n",
		"tenants:\n  - {id: a, client_id: c, client_secret: {x: " + secret + "}}\n",
		"tenants:\n  - {id: a, client_id: c, client_secret_file: /x}\n",
		"tenants:\n  - {id: a, client_id: c, client_secret_env: LEAKY, region: nowhere}\n",
	} {
		_, err := Parse([]byte(doc), lookupEnv, leakyRead)
		if err == nil {
			t.Fatalf("accepted %q", doc)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "org1")
	if err := os.WriteFile(secretPath, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ORGDISPATCH_TEST_SECRET", "from-env")
	path := filepath.Join(dir, "tenants.yaml")
	doc := "tenants:\n  - {id: a, client_id: c, client_secret_file: " + secretPath + "}\n  - {id: b, client_id: c, client_secret_env: ORGDISPATCH_TEST_SECRET}\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := f.Get("a"); a.ClientSecret.Reveal() != "from-file" {
		t.Errorf("a's secret = %q", a.ClientSecret.Reveal())
	}
	if b, _ := f.Get("b"); b.ClientSecret.Reveal() != "from-env" {
		t.Errorf("b's secret = %q", b.ClientSecret.Reveal())
	}

	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
	if err := os.WriteFile(path, []byte("tenants: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "the list is empty") {
		t.Errorf("Load(bad) = %v, want an error naming the file and the problem", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Errorf("Load's error does not wrap the *FieldError")
	}
}

func TestExampleFile(t *testing.T) {
	f, err := Load(filepath.Join("..", "examples", "tenants.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tenants) != 3 {
		t.Fatalf("%d tenants, want 3", len(f.Tenants))
	}
	for i, tn := range f.Tenants {
		n := string(rune('1' + i))
		if tn.ID != "org_"+n || tn.ClientID != "client_org"+n || tn.ClientSecret.Reveal() != "secret"+n {
			t.Errorf("tenant %d = %s / %s", i, tn.ID, tn.ClientID)
		}
		if tn.APIBase != "http://127.0.0.1:9090" || tn.TokenURL != "http://127.0.0.1:9090/oauth/token" {
			t.Errorf("%s: endpoints %s %s, want the simulator's", tn.ID, tn.APIBase, tn.TokenURL)
		}
		if err := tn.Validate(); err != nil {
			t.Error(err)
		}
	}
	if !f.Tenants[2].RateAuto || f.Tenants[0].RateAuto {
		t.Error("rate: auto not applied to org_3 only")
	}
}
