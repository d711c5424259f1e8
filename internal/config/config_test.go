package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// clearEnv unsets every ORGDISPATCH_* variable for the test (restored by
// t.Setenv's cleanup).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, EnvPrefix+"_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func setEnv(t *testing.T, kv map[string]string) {
	t.Helper()
	for k, v := range kv {
		t.Setenv(EnvPrefix+"_"+k, v)
	}
}

func TestLoadDefaults(t *testing.T) {
	clearEnv(t)
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		NATSListen:      "127.0.0.1:4222",
		StoreDir:        "data/nats",
		Prefix:          "orgdispatch",
		TenantsFile:     "tenants.yaml",
		HTTPAddr:        "127.0.0.1:8080",
		StreamReplicas:  1,
		MaxConsumers:    10000,
		ConsumerStorage: "memory",
		AuditMaxAge:     90 * 24 * time.Hour,
		AuditMaxMsgs:    100000,
		ReplicaID:       DefaultReplicaID(),
		ShutdownTimeout: 10 * time.Second,
		LogLevel:        "info",
		LogFormat:       "text",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load() = %+v\nwant     %+v", c, want)
	}
	if !c.Embedded() {
		t.Error("Embedded() = false with no NATS_URL")
	}
	if got := c.ClientURL(); got != "nats://127.0.0.1:4222" {
		t.Errorf("ClientURL() = %q", got)
	}
	if h, p := c.EmbeddedListen(); h != "127.0.0.1" || p != 4222 {
		t.Errorf("EmbeddedListen() = %q, %d", h, p)
	}
	if got := c.Names().ShardStream(0); got != "ORGDISPATCH_JOBS_00" {
		t.Errorf("Names().ShardStream(0) = %q", got)
	}
	if !strings.HasSuffix(c.ReplicaID, fmt.Sprintf("-%d", os.Getpid())) {
		t.Errorf("default ReplicaID %q does not end in the pid", c.ReplicaID)
	}
}

func TestLoadAllSet(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	setEnv(t, map[string]string{
		"NATS_URL":         "tls://a.example:4222, tls://b.example:4222",
		"NATS_CREDS":       dir + "/user.creds",
		"NATS_TLS_CA":      dir + "/ca.pem",
		"NATS_TLS_CERT":    dir + "/cert.pem",
		"NATS_TLS_KEY":     dir + "/key.pem",
		"NATS_LISTEN":      "off",
		"STORE_DIR":        dir,
		"PREFIX":           "acme-prod",
		"TENANTS_FILE":     "/etc/orgdispatch/tenants.yaml",
		"HTTP_ADDR":        ":9000",
		"HTTP_HOSTS":       "orgdispatch.internal, api",
		"API_TOKEN":        "s3cr3t-token",
		"API_TOKENS_FILE":  "/etc/orgdispatch/tokens.yaml",
		"METRICS_AUTH":     "true",
		"AUDIT_MAX_AGE":    "720h",
		"AUDIT_MAX_MSGS":   "5000",
		"API_URL":          "https://orgdispatch.internal:8443",
		"STREAM_REPLICAS":  "3",
		"MAX_CONSUMERS":    "20000",
		"CONSUMER_STORAGE": "file",
		"REPLICA_ID":       "worker-0",
		"SHUTDOWN_TIMEOUT": "1m30s",
		"LOG_LEVEL":        "debug",
		"LOG_FORMAT":       "json",
	})
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		NATSURL:         "tls://a.example:4222, tls://b.example:4222",
		NATSCreds:       dir + "/user.creds",
		NATSTLSCA:       dir + "/ca.pem",
		NATSTLSCert:     dir + "/cert.pem",
		NATSTLSKey:      dir + "/key.pem",
		NATSListen:      "off",
		StoreDir:        dir,
		Prefix:          "acme-prod",
		TenantsFile:     "/etc/orgdispatch/tenants.yaml",
		HTTPAddr:        ":9000",
		HTTPHosts:       []string{"orgdispatch.internal", " api"},
		APIToken:        "s3cr3t-token",
		APITokensFile:   "/etc/orgdispatch/tokens.yaml",
		MetricsAuth:     true,
		AuditMaxAge:     720 * time.Hour,
		AuditMaxMsgs:    5000,
		APIURL:          "https://orgdispatch.internal:8443",
		StreamReplicas:  3,
		MaxConsumers:    20000,
		ConsumerStorage: "file",
		ReplicaID:       "worker-0",
		ShutdownTimeout: 90 * time.Second,
		LogLevel:        "debug",
		LogFormat:       "json",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load() = %#v\nwant     %#v", c, want)
	}
	if got := c.HTTPHostNames(); !slices.Equal(got, []string{"orgdispatch.internal", "api"}) {
		t.Errorf("HTTPHostNames() = %q", got)
	}
	if c.Embedded() {
		t.Error("Embedded() = true with NATS_URL set")
	}
	if h, p := c.EmbeddedListen(); h != "" || p != 0 {
		t.Errorf("EmbeddedListen() with off = %q, %d; want not listening", h, p)
	}
	if got := c.ClientURL(); got != c.NATSURL {
		t.Errorf("ClientURL() = %q, want NATS_URL", got)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string // substrings of the error
	}{
		{map[string]string{"SHUTDOWN_TIMEOUT": "soon"}, []string{"ORGDISPATCH_SHUTDOWN_TIMEOUT", "duration"}},
		{map[string]string{"SHUTDOWN_TIMEOUT": "0s"}, []string{"ORGDISPATCH_SHUTDOWN_TIMEOUT", "positive"}},
		{map[string]string{"MAX_CONSUMERS": "many"}, []string{"ORGDISPATCH_MAX_CONSUMERS", "integer"}},
		{map[string]string{"MAX_CONSUMERS": "0"}, []string{"ORGDISPATCH_MAX_CONSUMERS"}},
		{map[string]string{"CONSUMER_STORAGE": "disk"}, []string{"ORGDISPATCH_CONSUMER_STORAGE", `"disk": want file or memory`}},
		{map[string]string{"CONSUMER_STORAGE": ""}, []string{"ORGDISPATCH_CONSUMER_STORAGE"}},
		{map[string]string{"STREAM_REPLICAS": "7"}, []string{"ORGDISPATCH_STREAM_REPLICAS", "1 to 5"}},
		{map[string]string{"NATS_URL": "http://nats:4222"}, []string{"ORGDISPATCH_NATS_URL", "nats://"}},
		{map[string]string{"NATS_URL": "nats://"}, []string{"ORGDISPATCH_NATS_URL", "no host"}},
		{map[string]string{"NATS_CREDS": "/x.creds"}, []string{"ORGDISPATCH_NATS_CREDS", "external server only"}},
		{map[string]string{"NATS_URL": "nats://h:4222", "NATS_TLS_CERT": "/c.pem"}, []string{"ORGDISPATCH_NATS_TLS_CERT", "NATS_TLS_KEY"}},
		{map[string]string{"NATS_LISTEN": "4222"}, []string{"ORGDISPATCH_NATS_LISTEN", "host:port", `"off"`}},
		{map[string]string{"NATS_LISTEN": "127.0.0.1:70000"}, []string{"ORGDISPATCH_NATS_LISTEN", "0-65535"}},
		{map[string]string{"NATS_LISTEN": ""}, []string{"ORGDISPATCH_NATS_LISTEN"}},
		{map[string]string{"STORE_DIR": ""}, []string{"ORGDISPATCH_STORE_DIR", "empty"}},
		{map[string]string{"PREFIX": "Org.Dispatch"}, []string{"ORGDISPATCH_PREFIX"}},
		{map[string]string{"PREFIX": ""}, []string{"ORGDISPATCH_PREFIX"}},
		{map[string]string{"TENANTS_FILE": ""}, []string{"ORGDISPATCH_TENANTS_FILE"}},
		{map[string]string{"HTTP_ADDR": "localhost"}, []string{"ORGDISPATCH_HTTP_ADDR", "no HTTP server"}},
		{map[string]string{"API_URL": "127.0.0.1:8080"}, []string{"ORGDISPATCH_API_URL", "http://"}},
		{map[string]string{"REPLICA_ID": "a b"}, []string{"ORGDISPATCH_REPLICA_ID"}},
		{map[string]string{"REPLICA_ID": ".hidden"}, []string{"ORGDISPATCH_REPLICA_ID"}},
		{map[string]string{"LOG_LEVEL": "loud"}, []string{"ORGDISPATCH_LOG_LEVEL", "debug, info"}},
		{map[string]string{"LOG_FORMAT": "xml"}, []string{"ORGDISPATCH_LOG_FORMAT", "text or json"}},
		// Several problems are reported together.
		{map[string]string{"LOG_FORMAT": "xml", "STREAM_REPLICAS": "0"}, []string{"ORGDISPATCH_LOG_FORMAT", "ORGDISPATCH_STREAM_REPLICAS"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.env), func(t *testing.T) {
			clearEnv(t)
			setEnv(t, tt.env)
			_, err := Load()
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadEmptyHTTPAddrMeansNoServer(t *testing.T) {
	clearEnv(t)
	setEnv(t, map[string]string{"HTTP_ADDR": ""})
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.HTTPAddr != "" {
		t.Errorf("HTTPAddr = %q, want empty (explicitly set empty is not replaced by the default)", c.HTTPAddr)
	}
}

func TestErrorsNeverShowSecrets(t *testing.T) {
	clearEnv(t)
	setEnv(t, map[string]string{
		"NATS_URL": "nats://alice:hunter2@nats.example:4222,https://tok3n@other:1,nats://carol:pw%zz@x:1",
	})
	_, err := Load()
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	for _, secret := range []string{"hunter2", "tok3n", "pw%zz", "alice", "carol"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q shows %q", err, secret)
		}
	}
	// A value that fails to parse is not echoed either: it might be a secret
	// pasted into the wrong variable.
	clearEnv(t)
	setEnv(t, map[string]string{"SHUTDOWN_TIMEOUT": "hunter2"})
	if _, err := Load(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Load() error = %v; want an error that does not echo the value", err)
	}
}

func TestConfigNeverPrintsAPIToken(t *testing.T) {
	clearEnv(t)
	const token = "very-secret-token"
	setEnv(t, map[string]string{"API_TOKEN": token, "NATS_URL": "nats://bob:pa55@h:4222"})
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.APIToken.Reveal() != token {
		t.Fatalf("Reveal() = %q", c.APIToken.Reveal())
	}
	var printed bytes.Buffer
	fmt.Fprintf(&printed, "%v %+v %#v %s\n", c, c, c, c.APIToken)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	printed.Write(js)
	if strings.Contains(printed.String(), token) {
		t.Errorf("printed config shows the API token:\n%s", printed.String())
	}
	if !strings.Contains(printed.String(), "[redacted]") {
		t.Errorf("printed config does not say the token is redacted:\n%s", printed.String())
	}
	var logged bytes.Buffer
	for _, format := range []string{"text", "json"} {
		c.LogFormat = format
		c.NewLogger(&logged).Info("start", "config", c, "token", c.APIToken)
	}
	out := logged.String()
	for _, secret := range []string{token, "pa55", "bob"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"config.api_token_set=true", `"api_token_set":true`, "token=[redacted]", "nats://redacted@h:4222"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"nats://h:4222":                          "nats://h:4222",
		"nats://u:p@h:4222":                      "nats://redacted@h:4222",
		"nats://token@h:4222":                    "nats://redacted@h:4222",
		"nats://u:p@a:1, tls://t@b:2":            "nats://redacted@a:1,tls://redacted@b:2",
		"nats://u:p%zz@h:4222":                   "redacted@h:4222",
		"tls://h:4222,nats://user:secret@g:4222": "tls://h:4222,nats://redacted@g:4222",
	}
	for in, want := range tests {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestListenAndClientURL(t *testing.T) {
	tests := []struct {
		listen    string
		host      string
		port      int
		clientURL string
	}{
		{"127.0.0.1:4222", "127.0.0.1", 4222, "nats://127.0.0.1:4222"},
		{"127.0.0.1:0", "127.0.0.1", -1, ""},
		{":4333", "", 4333, "nats://127.0.0.1:4333"},
		{"0.0.0.0:4222", "0.0.0.0", 4222, "nats://127.0.0.1:4222"},
		{"[::1]:4222", "::1", 4222, "nats://[::1]:4222"},
		{"off", "", 0, ""},
	}
	for _, tt := range tests {
		c := Config{NATSListen: tt.listen}
		if h, p := c.EmbeddedListen(); h != tt.host || p != tt.port {
			t.Errorf("%q: EmbeddedListen() = %q, %d; want %q, %d", tt.listen, h, p, tt.host, tt.port)
		}
		if got := c.ClientURL(); got != tt.clientURL {
			t.Errorf("%q: ClientURL() = %q, want %q", tt.listen, got, tt.clientURL)
		}
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	var buf bytes.Buffer
	if err := Usage(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	keys := Keys()
	want := []string{
		"NATS_URL", "NATS_CREDS", "NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY", "NATS_INBOX_PREFIX", "NATS_LISTEN",
		"STORE_DIR", "PREFIX", "TENANTS_FILE", "HTTP_ADDR", "HTTP_HOSTS", "API_TOKEN", "API_ALLOW_NO_AUTH", "API_TOKENS_FILE",
		"METRICS_AUTH", "API_URL", "STREAM_REPLICAS", "MAX_CONSUMERS", "CONSUMER_STORAGE", "AUDIT_MAX_AGE", "AUDIT_MAX_MSGS", "REPLICA_ID", "SHUTDOWN_TIMEOUT", "LOG_LEVEL", "LOG_FORMAT",
	}
	for i := range want {
		want[i] = EnvPrefix + "_" + want[i]
	}
	if !slices.Equal(keys, want) {
		t.Errorf("Keys() = %v\nwant     %v", keys, want)
	}
	lines := strings.Split(out, "\n")
	for _, k := range want {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, k+" ") })
		if i < 0 {
			t.Errorf("usage has no row for %s:\n%s", k, out)
			continue
		}
		if len(strings.Fields(lines[i])) < 3 {
			t.Errorf("usage row for %s has no description: %q", k, lines[i])
		}
	}
	for _, row := range []string{"ORGDISPATCH_NATS_LISTEN", "127.0.0.1:4222", "ORGDISPATCH_SHUTDOWN_TIMEOUT", "10s"} {
		if !strings.Contains(out, row) {
			t.Errorf("usage lacks %q", row)
		}
	}
}

func TestUnknownNamesMisspellings(t *testing.T) {
	clearEnv(t)
	setEnv(t, map[string]string{"NATS_ULR": "nats://h:4222", "PREFIX": "x"})
	if got := Unknown(); !slices.Equal(got, []string{"ORGDISPATCH_NATS_ULR"}) {
		t.Errorf("Unknown() = %v, want [ORGDISPATCH_NATS_ULR]", got)
	}
}

func TestNewLoggerLevelAndFormat(t *testing.T) {
	var buf bytes.Buffer
	l := Config{LogLevel: "warn", LogFormat: "json"}.NewLogger(&buf)
	l.Info("hidden")
	l.Warn("shown", "tenant", "org_1")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["tenant"] != "org_1" {
		t.Errorf("record = %v", rec)
	}
	if !(Config{LogLevel: "debug"}.NewLogger(&buf).Enabled(t.Context(), slog.LevelDebug)) {
		t.Error("debug level not enabled")
	}
}

func TestStreamConfig(t *testing.T) {
	for storage, want := range map[string]jetstream.StorageType{"file": jetstream.FileStorage, "memory": jetstream.MemoryStorage} {
		clearEnv(t)
		setEnv(t, map[string]string{"CONSUMER_STORAGE": storage, "STREAM_REPLICAS": "3", "MAX_CONSUMERS": "500", "AUDIT_MAX_AGE": "1h", "AUDIT_MAX_MSGS": "7"})
		c, err := Load()
		if err != nil {
			t.Fatalf("%s: Load: %v", storage, err)
		}
		got := c.StreamConfig()
		if got != (dispatcher.StreamConfig{Replicas: 3, MaxConsumers: 500, ConsumerStorage: want, AuditMaxAge: time.Hour, AuditMaxMsgs: 7}) {
			t.Errorf("%s: StreamConfig() = %+v", storage, got)
		}
	}
}

func TestHTTPHostNamesDefault(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:8080", []string{"localhost", "127.0.0.1", "::1"}},
		{"0.0.0.0:8080", []string{"localhost", "127.0.0.1", "::1"}},
		{":8080", []string{"localhost", "127.0.0.1", "::1"}},
		{"orgdispatch.lan:8080", []string{"localhost", "127.0.0.1", "::1", "orgdispatch.lan"}},
	} {
		if got := (Config{HTTPAddr: tc.addr}).HTTPHostNames(); !slices.Equal(got, tc.want) {
			t.Errorf("HTTP_ADDR %q: HTTPHostNames() = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// TestREADMEListsEveryVariable keeps the README's settings table in step
// with the variables orgdispatch reads.
func TestREADMEListsEveryVariable(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, k := range Keys() {
		// "`ORGDISPATCH_NATS_TLS_CERT` / `_KEY`" names a pair in one row.
		short := "`_" + k[strings.LastIndex(k, "_")+1:] + "`"
		if !strings.Contains(readme, "`"+k+"`") && !strings.Contains(readme, short) {
			t.Errorf("README.md does not list %s", k)
		}
	}
}
