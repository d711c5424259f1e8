package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"

	"github.com/orgdispatch/orgdispatch/tenants"
)

// scale is how many replicas of a service the stack test runs at least, as
// `docker compose up --scale worker=2` would.
var scale = map[string]int{"worker": 2}

// stack is docker-compose.yml's default-profile services run as local
// processes. Each container becomes a process with the service's command
// and environment; what only exists inside Docker is mapped:
//
//   - host names: "<service>:<port>" (the compose network's DNS) becomes
//     127.0.0.1 and a free port of that service's process; a process's own
//     "0.0.0.0:<port>", "127.0.0.1:<port>" and "localhost:<port>" become
//     127.0.0.1 and its own free port;
//   - volumes: a named volume is a directory shared by the services that
//     mount it; a bind mount is a copy of its source (with the host names
//     inside mapped too, as DNS would resolve them); a container path in a
//     command, variable or health check becomes the host path;
//   - images: a service built from the Dockerfile runs the binary its
//     ENTRYPOINT names, built here as the Dockerfile builds it; the nats
//     image runs nats-server built from the module go.mod requires.
type stack struct {
	t       *testing.T
	cf      *composeFile
	bins    map[string]string // entrypoint path or image stand-in → local binary
	entry   string            // the Dockerfile's ENTRYPOINT binary, e.g. /orgdispatch
	dir     string
	volumes map[string]string // named volume → host dir
	order   []string          // services in start order
	insts   map[string][]*instance
}

type instance struct {
	svc    string
	n      int
	ports  map[int]int // container port → local port
	mounts [][2]string // container path → host path, longest first
	env    map[string]string
	bin    string
	args   []string
	dir    string
	logf   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // Wait's result, after exited is closed
}

func (in *instance) name() string { return fmt.Sprintf("%s-%d", in.svc, in.n) }

// TestComposeStack runs the compose stack as local processes and sends jobs
// through it: POST /v1/jobs on the api, two worker replicas, the simulator
// seeing every job, then a graceful stop.
func TestComposeStack(t *testing.T) {
	start := time.Now()
	cf, err := loadCompose(filepath.Join(repoRoot, "docker-compose.yml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, cf: cf, dir: t.TempDir(), volumes: map[string]string{}, insts: map[string][]*instance{}}
	s.build()
	t.Logf("built the binaries in %s", time.Since(start).Round(time.Millisecond))
	s.plan()
	t.Cleanup(s.killAll)

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	for _, svc := range s.order {
		for dep, cond := range cf.Services[svc].DependsOn {
			if cond == "service_healthy" {
				for _, in := range s.insts[dep] {
					s.waitHealthy(ctx, in)
				}
			}
		}
		for _, in := range s.insts[svc] {
			s.start(in)
		}
	}
	for _, svc := range s.order {
		for _, in := range s.insts[svc] {
			if cf.Services[svc].Healthcheck != nil {
				s.waitHealthy(ctx, in)
			}
		}
	}
	t.Logf("stack healthy %s after the start", time.Since(start).Round(time.Millisecond))

	s.runJobs(ctx)
	t.Logf("jobs done %s after the start", time.Since(start).Round(time.Millisecond))
	s.stopAll()
	s.checkLogs()
}

// build builds the Dockerfile's binary and nats-server, concurrently.
func (s *stack) build() {
	t := s.t
	entry, err := dockerfileEntrypoint(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s.entry = entry
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the stack's binaries: %v", err)
	}
	bin := filepath.Join(s.dir, "bin")
	s.bins = map[string]string{entry: filepath.Join(bin, "orgdispatch"), "nats": filepath.Join(bin, "nats-server")}
	var g errgroup.Group
	for _, b := range []struct{ out, pkg string }{
		// As the Dockerfile builds it.
		{s.bins[entry], "./cmd/orgdispatch"},
		// A main package of the module go.mod requires (the version the
		// embedded server uses).
		{s.bins["nats"], "github.com/nats-io/nats-server/v2"},
	} {
		g.Go(func() error {
			cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", b.out, b.pkg)
			cmd.Dir = repoRoot
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

var entrypointRE = regexp.MustCompile(`(?m)^ENTRYPOINT\s+(\[.*\])\s*$`)

// dockerfileEntrypoint returns the binary of the Dockerfile's (last)
// ENTRYPOINT, which must be in exec form.
func dockerfileEntrypoint(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	m := entrypointRE.FindAllSubmatch(data, -1)
	if m == nil {
		return "", fmt.Errorf("%s: no ENTRYPOINT in exec form", path)
	}
	var argv []string
	if err := json.Unmarshal(m[len(m)-1][1], &argv); err != nil || len(argv) != 1 {
		return "", fmt.Errorf("%s: ENTRYPOINT %s: want [\"/binary\"]", path, m[len(m)-1][1])
	}
	return argv[0], nil
}

// plan orders the services, allocates ports, maps volumes and builds each
// instance's command and environment.
func (s *stack) plan() {
	t := s.t
	var names []string
	for name, svc := range s.cf.Services {
		if len(svc.Profiles) == 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	order, err := topoSort(names, func(n string) []string {
		var deps []string
		for d := range s.cf.Services[n].DependsOn {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		return deps
	})
	if err != nil {
		t.Fatal(err)
	}
	s.order = order

	// Instances and their ports.
	for _, name := range order {
		svc := s.cf.Services[name]
		n := 1
		if svc.Deploy.Replicas != nil {
			n = *svc.Deploy.Replicas
		}
		n = max(n, scale[name])
		for i := 1; i <= n; i++ {
			in := &instance{svc: name, n: i, ports: map[int]int{}, exited: make(chan struct{})}
			in.dir = filepath.Join(s.dir, "run", in.name())
			if err := os.MkdirAll(in.dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, p := range s.containerPorts(name) {
				in.ports[p] = freePort(t)
			}
			s.insts[name] = append(s.insts[name], in)
		}
	}
	// Mounts, command and environment.
	for _, name := range order {
		svc := s.cf.Services[name]
		for _, in := range s.insts[name] {
			in.mounts = s.mounts(in)
			in.env = map[string]string{}
			for k, v := range svc.Environment {
				in.env[k] = s.rewrite(in, v)
			}
			var args []string
			for _, a := range svc.Command {
				args = append(args, s.rewrite(in, a))
			}
			switch {
			case svc.Build != nil:
				in.bin, in.args = s.bins[s.entry], args
			case natsImageOK(svc.Image):
				in.bin, in.args = s.bins["nats"], natsArgs(t, in, args)
			default:
				t.Fatalf("service %s: no local stand-in for image %q", name, svc.Image)
			}
			in.logf = filepath.Join(s.dir, "logs", in.name()+".log")
		}
	}
}

// containerPorts lists the ports a service's containers listen on: its
// ports entries, the 0.0.0.0:<port> addresses in its command and
// environment, and its image's defaults.
func (s *stack) containerPorts(name string) []int {
	svc := s.cf.Services[name]
	set := map[int]bool{}
	for _, p := range svc.Ports {
		port, _, err := containerPort(p)
		if err != nil {
			s.t.Fatal(err)
		}
		set[port] = true
	}
	var texts []string
	texts = append(texts, svc.Command...)
	for _, v := range svc.Environment {
		texts = append(texts, v)
	}
	for _, txt := range texts {
		for _, m := range anyAddrRE.FindAllStringSubmatch(txt, -1) {
			port, _ := strconv.Atoi(m[1])
			set[port] = true
		}
	}
	if natsImageOK(svc.Image) {
		set[4222] = true // nats-server's default client port
		for i, a := range svc.Command {
			if (a == "-m" || a == "--http_port" || a == "-p" || a == "--port") && i+1 < len(svc.Command) {
				port, err := strconv.Atoi(svc.Command[i+1])
				if err != nil {
					s.t.Fatalf("nats: %s %q: not a port", a, svc.Command[i+1])
				}
				set[port] = true
			}
		}
	}
	var out []int
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

var (
	anyAddrRE  = regexp.MustCompile(`\b0\.0\.0\.0:(\d+)\b`)
	selfAddrRE = regexp.MustCompile(`\b(?:0\.0\.0\.0|127\.0\.0\.1|localhost):(\d+)\b`)
)

// mounts maps an instance's volumes: named volumes to shared directories,
// bind mounts to copies (host names inside rewritten).
func (s *stack) mounts(in *instance) [][2]string {
	t := s.t
	var out [][2]string
	for i, v := range s.cf.Services[in.svc].Volumes {
		parts := strings.Split(v, ":")
		src, dst := parts[0], parts[1]
		var host string
		if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
			host = filepath.Join(s.dir, "binds", fmt.Sprintf("%s-%d", in.name(), i))
			s.copyTree(in, filepath.Join(repoRoot, src), host)
		} else {
			host = s.volumes[src]
			if host == "" {
				host = filepath.Join(s.dir, "volumes", src)
				if err := os.MkdirAll(host, 0o755); err != nil {
					t.Fatal(err)
				}
				s.volumes[src] = host
			}
		}
		out = append(out, [2]string{dst, host})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return len(b[0]) - len(a[0]) })
	return out
}

// copyTree copies a bind mount's source, mapping service host names in the
// files as the compose network's DNS would resolve them.
func (s *stack) copyTree(in *instance, src, dst string) {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, []byte(s.rewriteHosts(in, string(data))), 0o644)
	})
	if err != nil {
		s.t.Fatalf("bind mount %s: %v", src, err)
	}
}

// rewrite maps host names, the instance's own addresses and container
// paths in one string of a command or environment.
func (s *stack) rewrite(in *instance, v string) string {
	v = selfAddrRE.ReplaceAllStringFunc(v, func(m string) string {
		port, _ := strconv.Atoi(m[strings.LastIndexByte(m, ':')+1:])
		local, ok := in.ports[port]
		if !ok {
			s.t.Fatalf("%s: %q names port %d, which the service does not listen on", in.name(), v, port)
		}
		return "127.0.0.1:" + strconv.Itoa(local)
	})
	v = s.rewriteHosts(in, v)
	for _, m := range in.mounts {
		if v == m[0] || strings.HasPrefix(v, m[0]+"/") {
			return m[1] + v[len(m[0]):]
		}
	}
	return v
}

// rewriteHosts maps "<service>:<port>" to 127.0.0.1 and that service's
// local port.
func (s *stack) rewriteHosts(in *instance, v string) string {
	for name, insts := range s.insts {
		re := regexp.MustCompile(`(^|[^A-Za-z0-9_.-])` + regexp.QuoteMeta(name) + `:(\d+)\b`)
		v = re.ReplaceAllStringFunc(v, func(m string) string {
			sub := re.FindStringSubmatch(m)
			port, _ := strconv.Atoi(sub[2])
			if len(insts) != 1 {
				s.t.Fatalf("%s: %q: service %s has %d replicas; a name with several addresses is not mapped", in.name(), v, name, len(insts))
			}
			local, ok := insts[0].ports[port]
			if !ok {
				s.t.Fatalf("%s: %q: service %s does not listen on port %d", in.name(), v, name, port)
			}
			return sub[1] + "127.0.0.1:" + strconv.Itoa(local)
		})
	}
	return v
}

// natsArgs maps nats-server's ports in args and keeps it on loopback.
func natsArgs(t *testing.T, in *instance, args []string) []string {
	out := slices.Clone(args)
	hasPort := false
	for i, a := range out {
		if (a == "-m" || a == "--http_port" || a == "-p" || a == "--port") && i+1 < len(out) {
			port, _ := strconv.Atoi(out[i+1])
			out[i+1] = strconv.Itoa(in.ports[port])
			hasPort = hasPort || a == "-p" || a == "--port"
		}
	}
	if !hasPort {
		out = append(out, "-p", strconv.Itoa(in.ports[4222]))
	}
	return append(out, "-a", "127.0.0.1")
}

func topoSort(names []string, deps func(string) []string) ([]string, error) {
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("depends_on cycle: %s", strings.Join(append(path, n), " → "))
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range deps(n) {
			if !slices.Contains(names, d) {
				return fmt.Errorf("service %s depends on %s, which is not in the default profile", n, d)
			}
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// start starts an instance with exactly its service's environment.
func (s *stack) start(in *instance) {
	t := s.t
	if err := os.MkdirAll(filepath.Dir(in.logf), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(in.logf)
	if err != nil {
		t.Fatal(err)
	}
	in.cmd = exec.Command(in.bin, in.args...)
	in.cmd.Env = envList(in.env)
	in.cmd.Dir = in.dir
	in.cmd.Stdout, in.cmd.Stderr = f, f
	if err := in.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", in.name(), err)
	}
	go func() {
		in.err = in.cmd.Wait()
		f.Close()
		close(in.exited)
	}()
}

// healthy runs the service's healthcheck once for an instance: a CMD of
// the image's entrypoint binary runs that binary (mapped) with the
// instance's environment; the nats image's wget is done with a GET.
func (s *stack) healthy(ctx context.Context, in *instance) error {
	h := s.cf.Services[in.svc].Healthcheck
	timeout := 5 * time.Second
	if d, err := time.ParseDuration(h.Timeout); err == nil && d > 0 {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if h.Test[0] != "CMD" {
		return fmt.Errorf("healthcheck %q: only the CMD form is reproduced here", h.Test)
	}
	argv := make([]string, 0, len(h.Test)-1)
	for _, a := range h.Test[1:] {
		argv = append(argv, s.rewrite(in, a))
	}
	switch argv[0] {
	case s.entry:
		cmd := exec.CommandContext(ctx, s.bins[s.entry], argv[1:]...)
		cmd.Env = envList(in.env)
		cmd.Dir = in.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
		return nil
	case "wget":
		u := argv[len(argv)-1]
		if _, err := url.ParseRequestURI(u); err != nil {
			return fmt.Errorf("wget healthcheck: the last argument %q is not a URL", u)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return nil
	}
	return fmt.Errorf("healthcheck %q: no local stand-in for %s", h.Test, argv[0])
}

// waitHealthy polls the healthcheck until it passes, failing the test when
// the process exits or ctx ends.
func (s *stack) waitHealthy(ctx context.Context, in *instance) {
	t := s.t
	var last error
	for {
		if last = s.healthy(ctx, in); last == nil {
			return
		}
		select {
		case <-in.exited:
			t.Fatalf("%s exited (%v) before it was healthy\n%s", in.name(), in.err, s.tail(in))
		case <-ctx.Done():
			t.Fatalf("%s not healthy: %v\n%s", in.name(), last, s.tail(in))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *stack) tail(in *instance) string {
	data, _ := os.ReadFile(in.logf)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return fmt.Sprintf("--- %s log (%s %q):\n%s", in.name(), filepath.Base(in.bin), in.args, data)
}

func (s *stack) allTails() string {
	var b strings.Builder
	for _, svc := range s.order {
		for _, in := range s.insts[svc] {
			if in.cmd != nil {
				b.WriteString(s.tail(in))
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

// runJobs posts jobs for every tenant of the api's tenants file to the
// api, waits until all succeeded, and checks the simulator ran them and
// both workers were live.
func (s *stack) runJobs(ctx context.Context) {
	t := s.t
	apiIn := s.insts["api"][0]
	apiURL := "http://127.0.0.1:" + strconv.Itoa(apiIn.ports[8080])
	token := apiIn.env["ORGDISPATCH_API_TOKEN"]
	// The tenants file as the api sees it, with its secrets taken from the
	// api's environment.
	data, err := os.ReadFile(apiIn.env["ORGDISPATCH_TENANTS_FILE"])
	if err != nil {
		t.Fatalf("the api's tenants file: %v", err)
	}
	f, err := tenants.Parse(data, func(k string) (string, bool) { v, ok := apiIn.env[k]; return v, ok }, os.ReadFile)
	if err != nil {
		t.Fatalf("the api's tenants file: %v", err)
	}

	const perTenant = 10
	var jobs []map[string]any
	campaign := func(tenant, i int) string { return fmt.Sprintf("cmp-%d-%d", tenant, i) }
	for n, tn := range f.Tenants {
		for i := range perTenant {
			id := fmt.Sprintf("compose-%s-%d", tn.ID, i)
			jobs = append(jobs, map[string]any{"id": id, "tenant": tn.ID, "op": "campaign.start", "params": map[string]string{"campaign_id": campaign(n, i)}})
		}
	}
	body, _ := json.Marshal(jobs)

	call := func(method, path string, body []byte, auth string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, apiURL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		if method != http.MethodGet {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, s.allTails())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	if code, b := call("POST", "/v1/jobs", body, "wrong-token"); code != http.StatusUnauthorized {
		t.Errorf("POST /v1/jobs with a wrong token: %d %s", code, b)
	}
	code, b := call("POST", "/v1/jobs", body, token)
	var accepted struct {
		Accepted []string `json:"accepted"`
	}
	if err := json.Unmarshal(b, &accepted); code != http.StatusAccepted || err != nil || len(accepted.Accepted) != len(jobs) {
		t.Fatalf("POST /v1/jobs: %d %s", code, b)
	}

	// Wait until every job succeeded.
	pending := map[string]string{} // id → tenant
	for _, j := range jobs {
		pending[j["id"].(string)] = j["tenant"].(string)
	}
	for len(pending) > 0 {
		for id := range pending {
			code, b := call("GET", "/v1/jobs/"+id, nil, token)
			var st struct {
				Jobs []struct {
					State string `json:"state"`
					Error string `json:"error"`
				} `json:"jobs"`
			}
			if code == http.StatusOK && json.Unmarshal(b, &st) == nil && len(st.Jobs) == 1 {
				switch st.Jobs[0].State {
				case "succeeded":
					delete(pending, id)
				case "dead":
					t.Fatalf("job %s is dead: %s\n%s", id, st.Jobs[0].Error, s.allTails())
				}
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d jobs did not succeed in time\n%s", len(pending), len(jobs), s.allTails())
		case <-time.After(200 * time.Millisecond):
		}
	}

	// The simulator ran each job: every campaign is on.
	for n, tn := range f.Tenants {
		tok := simToken(ctx, t, tn)
		for i := range perTenant {
			id := campaign(n, i)
			status := simCampaignStatus(ctx, t, tn, tok, id)
			if status != "on" {
				t.Errorf("simulator: %s's campaign %s is %q, want on", tn.ID, id, status)
			}
		}
	}

	// Both workers are live replicas of every tenant, and their own
	// /metrics count the jobs they ran: together, all of them.
	workers := s.insts["worker"]
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, b := call("GET", "/v1/tenants", nil, token)
		var ts struct {
			Tenants []struct {
				ID       string `json:"id"`
				Replicas int    `json:"replicas"`
			} `json:"tenants"`
		}
		ok := json.Unmarshal(b, &ts) == nil && len(ts.Tenants) == len(f.Tenants)
		for _, x := range ts.Tenants {
			ok = ok && x.Replicas == len(workers)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/tenants does not show %d live worker replicas per tenant: %s", len(workers), b)
		}
		select { // heartbeats of other processes: polled, with a deadline
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	total := 0.0
	for _, w := range workers {
		total += succeededJobs(ctx, t, "http://127.0.0.1:"+strconv.Itoa(w.ports[8080])+"/metrics")
	}
	if int(total) != len(jobs) {
		t.Errorf("the workers' /metrics count %v succeeded jobs, want %d", total, len(jobs))
	}
}

func simToken(ctx context.Context, t *testing.T, tn tenants.Tenant) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tn.TokenURL, strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(tn.ClientID, tn.ClientSecret.Reveal())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("simulator token for %s: %v", tn.ID, err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("simulator token for %s: %s %v", tn.ID, resp.Status, err)
	}
	return tok.AccessToken
}

func simCampaignStatus(ctx context.Context, t *testing.T, tn tenants.Tenant, token, id string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tn.APIBase+"/api/v2/outbound/campaigns/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("simulator campaign %s: %v", id, err)
	}
	defer resp.Body.Close()
	var c struct {
		CampaignStatus string `json:"campaignStatus"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("simulator campaign %s: %s %v", id, resp.Status, err)
	}
	return c.CampaignStatus
}

// succeededJobs sums orgdispatch_jobs_total{outcome="succeeded"} on a
// /metrics page.
func succeededJobs(ctx context.Context, t *testing.T, u string) float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not Prometheus text format: %v", u, err)
	}
	if _, ok := families["orgdispatch_dispatchable_backlog"]; ok {
		t.Errorf("%s exports the cluster-wide tenant gauges: only the api should", u)
	}
	sum := 0.0
	for _, m := range families["orgdispatch_jobs_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "outcome" && l.GetValue() == "succeeded" {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// stopAll stops the services in reverse start order with SIGTERM, as
// `docker compose down` does, and checks that orgdispatch's processes
// exit cleanly within their stop_grace_period (default 10s).
func (s *stack) stopAll() {
	t := s.t
	for i := len(s.order) - 1; i >= 0; i-- {
		svc := s.cf.Services[s.order[i]]
		grace := 10 * time.Second
		if d, err := time.ParseDuration(svc.StopGracePeriod); err == nil {
			grace = d
		}
		insts := s.insts[s.order[i]]
		for _, in := range insts {
			_ = in.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, in := range insts {
			select {
			case <-in.exited:
			case <-time.After(grace):
				t.Errorf("%s did not stop within its stop_grace_period %s of SIGTERM\n%s", in.name(), grace, s.tail(in))
				_ = in.cmd.Process.Kill()
				<-in.exited
				continue
			}
			if svc.Build != nil && in.err != nil {
				t.Errorf("%s exited with %v after SIGTERM\n%s", in.name(), in.err, s.tail(in))
			}
		}
	}
}

// killAll kills whatever still runs (after a failure).
func (s *stack) killAll() {
	for _, insts := range s.insts {
		for _, in := range insts {
			if in.cmd == nil || in.cmd.Process == nil {
				continue
			}
			select {
			case <-in.exited:
			default:
				_ = in.cmd.Process.Kill()
				<-in.exited
			}
		}
	}
	if s.t.Failed() {
		s.t.Log(s.allTails())
	}
}

// checkLogs fails when a log shows the API token or a client secret.
func (s *stack) checkLogs() {
	var secrets []string
	for _, insts := range s.insts {
		for _, in := range insts {
			for k, v := range in.env {
				if (k == "ORGDISPATCH_API_TOKEN" || strings.HasSuffix(k, "_SECRET")) && v != "" {
					secrets = append(secrets, v)
				}
			}
		}
	}
	for _, insts := range s.insts {
		for _, in := range insts {
			data, err := os.ReadFile(in.logf)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.t.Error(err)
			}
			for _, sec := range secrets {
				if bytes.Contains(data, []byte(sec)) {
					s.t.Errorf("%s's log shows a secret", in.name())
				}
			}
		}
	}
}
