// Package deploy holds no code: only tests that keep the deployment files
// honest. docker-compose.yml is read and its services are started as local
// processes with the same commands and environment (stack_test.go), since
// Docker cannot run in CI; the Dockerfile, the Prometheus configuration and
// the Kubernetes manifests are checked against what the binary really does.
package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// repoRoot is where go.mod, docker-compose.yml and the Dockerfile are: the
// parent of this package's directory (go test runs in the package's).
const repoRoot = ".."

// composeFile is the part of the Compose specification orgdispatch's file
// uses. Decoding is strict: a key this test does not know (a typo, or a
// feature it would not reproduce) fails the test instead of being ignored.
type composeFile struct {
	Name     string              `yaml:"name"`
	Services map[string]*service `yaml:"services"`
	Volumes  map[string]any      `yaml:"volumes"`
}

type service struct {
	Image           string                  `yaml:"image"`
	Build           any                     `yaml:"build"`
	Command         stringOrList            `yaml:"command"`
	Environment     envMap                  `yaml:"environment"`
	Ports           []string                `yaml:"ports"`
	Volumes         []string                `yaml:"volumes"`
	DependsOn       dependsOn               `yaml:"depends_on"`
	Healthcheck     *healthcheck            `yaml:"healthcheck"`
	Deploy          struct{ Replicas *int } `yaml:"deploy"`
	Profiles        []string                `yaml:"profiles"`
	Restart         string                  `yaml:"restart"`
	StopGracePeriod string                  `yaml:"stop_grace_period"`
	ContainerName   string                  `yaml:"container_name"`
}

type healthcheck struct {
	Test        stringOrList `yaml:"test"`
	Interval    string       `yaml:"interval"`
	Timeout     string       `yaml:"timeout"`
	Retries     int          `yaml:"retries"`
	StartPeriod string       `yaml:"start_period"`
}

// stringOrList is a command: a YAML list, or a string split on spaces.
type stringOrList []string

func (s *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if strings.ContainsAny(n.Value, `"'\`) {
			return fmt.Errorf("line %d: a string command with quotes: write it as a list", n.Line)
		}
		*s = strings.Fields(n.Value)
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// envMap is an environment: a mapping, or a list of KEY=VALUE.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	out := envMap{}
	switch n.Kind {
	case yaml.MappingNode:
		var m map[string]string
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			out[k] = v
		}
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	default:
		return fmt.Errorf("line %d: environment must be a mapping or a list", n.Line)
	}
	*e = out
	return nil
}

// dependsOn maps a dependency to its condition (service_started when the
// short list form is used).
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	out := dependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			out[s] = "service_started"
		}
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			out[k] = v.Condition
			if v.Condition == "" {
				out[k] = "service_started"
			}
		}
	default:
		return fmt.Errorf("line %d: depends_on must be a list or a mapping", n.Line)
	}
	*d = out
	return nil
}

// loadCompose reads a compose file the way `docker compose` does: YAML with
// anchors and merge keys, x- extension keys dropped, ${VAR} interpolation
// from env (a clean shell without .env: env is empty), then strict decoding.
func loadCompose(path string, env map[string]string) (*composeFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for k := range doc {
		if strings.HasPrefix(k, "x-") {
			delete(doc, k)
		}
	}
	interpolated, err := interpolateAll(doc, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	data, err := yaml.Marshal(interpolated)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cf composeFile
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &cf, nil
}

func interpolateAll(v any, env map[string]string) (any, error) {
	switch x := v.(type) {
	case string:
		return interpolate(x, env)
	case map[string]any:
		for k, e := range x {
			r, err := interpolateAll(e, env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			x[k] = r
		}
	case []any:
		for i, e := range x {
			r, err := interpolateAll(e, env)
			if err != nil {
				return nil, err
			}
			x[i] = r
		}
	}
	return v, nil
}

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// interpolate expands $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?message} and ${VAR?message}, and $$ to $, as Compose does.
// Anything else is an error, not a guess.
func interpolate(s string, env map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		rest := s[i+1:]
		switch {
		case strings.HasPrefix(rest, "$"):
			b.WriteByte('$')
			i += 2
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return "", fmt.Errorf("%q: unterminated ${", s)
			}
			expr := rest[1:end]
			name := varName.FindString(expr)
			if name == "" {
				return "", fmt.Errorf("%q: bad variable in ${%s}", s, expr)
			}
			op := expr[len(name):]
			val, set := env[name]
			switch {
			case op == "":
			case strings.HasPrefix(op, ":-"):
				if val == "" {
					val = op[2:]
				}
			case strings.HasPrefix(op, "-"):
				if !set {
					val = op[1:]
				}
			case strings.HasPrefix(op, ":?"), strings.HasPrefix(op, "?"):
				if !set || (op[0] == ':' && val == "") {
					return "", fmt.Errorf("%q: %s is required: %s", s, name, strings.TrimLeft(op, ":?"))
				}
			default:
				return "", fmt.Errorf("%q: unsupported interpolation ${%s}", s, expr)
			}
			if strings.Contains(val, "${") {
				return "", fmt.Errorf("%q: nested interpolation is not supported", s)
			}
			b.WriteString(val)
			i += 1 + end + 1
		default:
			name := varName.FindString(rest)
			if name == "" {
				return "", fmt.Errorf("%q: a lone $ (write $$ for a literal one)", s)
			}
			b.WriteString(env[name])
			i += 1 + len(name)
		}
	}
	return b.String(), nil
}

// containerPort is the container side of a ports entry
// ("127.0.0.1:8080:8080", "8080:8080", "8080", "8080/tcp").
func containerPort(entry string) (port int, hostBound bool, err error) {
	parts := strings.Split(entry, ":")
	last, _, _ := strings.Cut(parts[len(parts)-1], "/")
	port, err = strconv.Atoi(last)
	if err != nil || port < 1 || port > 65535 {
		return 0, false, fmt.Errorf("ports entry %q: bad container port", entry)
	}
	return port, len(parts) > 1, nil
}

func TestInterpolate(t *testing.T) {
	env := map[string]string{"SET": "v", "EMPTY": ""}
	for in, want := range map[string]string{
		"plain":               "plain",
		"$SET-x":              "v-x",
		"${SET}":              "v",
		"${UNSET:-d}":         "d",
		"${EMPTY:-d}":         "d",
		"${EMPTY-d}":          "",
		"${UNSET-d}":          "d",
		"${SET:-d}":           "v",
		"a:${SET:?need}:b":    "a:v:b",
		"$$HOME":              "$HOME",
		"x${UNSET}y":          "xy",
		"c:${UNSET:-s1}:o,c2": "c:s1:o,c2",
	} {
		if got, err := interpolate(in, env); err != nil || got != want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"${UNSET:?needed}", "${EMPTY:?needed}", "${SET", "$", "${A:-${B}}", "${1x}", "${SET/x/y}"} {
		if got, err := interpolate(bad, env); err == nil {
			t.Errorf("interpolate(%q) = %q, want an error", bad, got)
		}
	}
}

// TestComposeFile checks what `docker compose config` would reject or what
// would break the documented use: every default-profile service runnable,
// dependencies and volumes declared, the worker scalable, Prometheus in its
// profile, healthchecks well formed.
func TestComposeFile(t *testing.T) {
	cf, err := loadCompose(filepath.Join(repoRoot, "docker-compose.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nats", "sim", "api", "worker", "prometheus"} {
		if cf.Services[name] == nil {
			t.Errorf("service %s is missing", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for name, s := range cf.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		for dep := range s.DependsOn {
			if cf.Services[dep] == nil {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
			if c := s.DependsOn[dep]; c != "service_started" && c != "service_healthy" && c != "service_completed_successfully" {
				t.Errorf("service %s: depends_on %s: unknown condition %q", name, dep, c)
			}
			if s.DependsOn[dep] == "service_healthy" && cf.Services[dep] != nil && cf.Services[dep].Healthcheck == nil {
				t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, ok := strings.Cut(v, ":")
			if !ok {
				t.Errorf("service %s: volume %q has no container path", name, v)
				continue
			}
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("service %s: bind mount source: %v", name, err)
				}
			} else if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("service %s: named volume %s is not declared under volumes", name, src)
			}
		}
		for _, p := range s.Ports {
			if _, _, err := containerPort(p); err != nil {
				t.Errorf("service %s: %v", name, err)
			}
		}
		if h := s.Healthcheck; h != nil {
			if len(h.Test) < 2 || (h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL") {
				t.Errorf("service %s: healthcheck test %q: want [CMD, ...] or [CMD-SHELL, ...]", name, h.Test)
			}
			for _, d := range []string{h.Interval, h.Timeout, h.StartPeriod} {
				if _, err := time.ParseDuration(d); d != "" && err != nil {
					t.Errorf("service %s: healthcheck duration %q: %v", name, d, err)
				}
			}
		}
		if d := s.StopGracePeriod; d != "" {
			if _, err := time.ParseDuration(d); err != nil {
				t.Errorf("service %s: stop_grace_period %q: %v", name, d, err)
			}
		}
	}

	w := cf.Services["worker"]
	if w.ContainerName != "" {
		t.Errorf("worker has container_name %q: it could not be scaled", w.ContainerName)
	}
	for _, p := range w.Ports {
		if _, hostBound, _ := containerPort(p); hostBound {
			t.Errorf("worker publishes port %q on the host: a second replica could not bind it", p)
		}
	}
	if w.Healthcheck == nil {
		t.Error("worker has no healthcheck")
	}
	if !slices.Contains(cf.Services["prometheus"].Profiles, "metrics") {
		t.Errorf("prometheus profiles = %v, want metrics", cf.Services["prometheus"].Profiles)
	}
	if tok := cf.Services["api"].Environment["ORGDISPATCH_API_TOKEN"]; tok == "" {
		t.Error("api has no ORGDISPATCH_API_TOKEN: it would refuse to listen on 0.0.0.0")
	}
	if img := cf.Services["nats"].Image; !natsImageOK(img) {
		t.Errorf("nats image %q: want the official image, version 2.11 or newer (consumer pause API)", img)
	}
	for _, name := range []string{"sim", "api", "worker"} {
		if cf.Services[name].Build == nil {
			t.Errorf("service %s is not built from the Dockerfile", name)
		}
	}
}

var natsImageRE = regexp.MustCompile(`^nats:(\d+)\.(\d+)`)

func natsImageOK(image string) bool {
	m := natsImageRE.FindStringSubmatch(image)
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return major > 2 || major == 2 && minor >= 11
}

// TestDockerfile checks the image recipe: a Go builder matching go.mod's Go
// version, a static build, a distroless non-root final stage, the binary as
// the entrypoint.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", len(froms))
	}
	if want := "golang:" + goVersion[1]; !strings.HasPrefix(froms[0][1], want) {
		t.Errorf("builder image %s, want %s (go.mod's Go version)", froms[0][1], want)
	}
	if last := froms[len(froms)-1][1]; !strings.HasPrefix(last, "gcr.io/distroless/static") || !strings.HasSuffix(last, ":nonroot") {
		t.Errorf("final image %s, want gcr.io/distroless/static…:nonroot", last)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "./cmd/orgdispatch", "USER nonroot"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	entry, err := dockerfileEntrypoint(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^COPY --from=\S+ \S+ ` + regexp.QuoteMeta(entry) + `$`).MatchString(df) {
		t.Errorf("the final stage does not copy the binary to the ENTRYPOINT %s", entry)
	}
}

// TestPrometheusConfig checks that deploy/prometheus.yml scrapes what the
// compose services serve: the api's HTTP port, and every worker replica's
// through the service name's DNS.
func TestPrometheusConfig(t *testing.T) {
	cf, err := loadCompose(filepath.Join(repoRoot, "docker-compose.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range cf.Services["prometheus"].Volumes {
		found = found || strings.HasPrefix(v, "./deploy/prometheus.yml:")
	}
	if !found {
		t.Error("the prometheus service does not mount ./deploy/prometheus.yml")
	}
	data, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &pc); err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, cf: cf}
	listens := func(svc string, port int) bool {
		return cf.Services[svc] != nil && slices.Contains(s.containerPorts(svc), port)
	}
	scraped := map[string]bool{}
	for _, sc := range pc.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, _ := strings.Cut(target, ":")
				p, _ := strconv.Atoi(port)
				if !listens(host, p) {
					t.Errorf("job %s: target %s: no compose service listens there", sc.JobName, target)
				}
				scraped[host] = true
			}
		}
		for _, d := range sc.DNSSDConfigs {
			for _, name := range d.Names {
				if d.Type != "A" || !listens(name, d.Port) {
					t.Errorf("job %s: DNS %s %s port %d: no compose service listens there", sc.JobName, d.Type, name, d.Port)
				}
				scraped[name] = true
			}
		}
	}
	for _, svc := range []string{"api", "worker"} {
		if !scraped[svc] {
			t.Errorf("prometheus.yml does not scrape %s", svc)
		}
	}
}
