package faultsuite

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Timeouts of the harness's own waits on other processes.
const (
	// readyTimeout bounds the wait for a started process to be ready.
	readyTimeout = 60 * time.Second
	// pollInterval is how often another process's state is polled.
	pollInterval = 100 * time.Millisecond
)

// harness owns the processes of one run: it starts them and kills them all
// (their process groups) at the end.
type harness struct {
	dir  string
	bins Binaries

	mu    sync.Mutex
	procs []*proc
}

// process describes a child process with env (nil: nothing but PATH),
// logging to dir/<name>.log; the harness kills it on close.
func (h *harness) process(name, bin string, args, env []string) *proc {
	dir := filepath.Join(h.dir, name)
	_ = os.MkdirAll(dir, 0o755)
	env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()}, env...)
	p := newProcess(name, bin, args, env, dir)
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	return p
}

// close kills every process the harness started.
func (h *harness) close() {
	h.mu.Lock()
	procs := h.procs
	h.mu.Unlock()
	for _, p := range procs {
		_ = p.Kill()
	}
}

// odProcess is one orgdispatch process (serve or worker) of a run.
type odProcess struct {
	*proc
	// HTTPAddr is its ORGDISPATCH_HTTP_ADDR (readiness, metrics).
	HTTPAddr string
	// TenantsFile is its ORGDISPATCH_TENANTS_FILE.
	TenantsFile string

	apiBase, tokenURL string // the platform endpoints its tenants file names
}

// launchOrgdispatch starts `orgdispatch <command>` named name with its own
// tenants file (ts, with the platform at apiBase and tokenURL) and
// settings; waitReady waits for it.
func (h *harness) launchOrgdispatch(name, command string, natsURLs []string, replicas int, ts tenantSet, apiBase, tokenURL string) (*odProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	o := &odProcess{HTTPAddr: "127.0.0.1:" + strconv.Itoa(port), apiBase: apiBase, tokenURL: tokenURL}
	tenantsYAML := ts.yaml(apiBase, tokenURL)
	o.TenantsFile = filepath.Join(h.dir, name, "tenants.yaml")
	if err := os.MkdirAll(filepath.Dir(o.TenantsFile), 0o755); err != nil {
		return nil, fmt.Errorf("faultsuite: %w", err)
	}
	if err := os.WriteFile(o.TenantsFile, tenantsYAML, 0o600); err != nil {
		return nil, fmt.Errorf("faultsuite: %w", err)
	}
	env := []string{
		"ORGDISPATCH_NATS_URL=" + strings.Join(natsURLs, ","),
		"ORGDISPATCH_TENANTS_FILE=" + o.TenantsFile,
		"ORGDISPATCH_HTTP_ADDR=" + o.HTTPAddr,
		"ORGDISPATCH_REPLICA_ID=" + name,
		"ORGDISPATCH_STREAM_REPLICAS=" + strconv.Itoa(replicas),
		"ORGDISPATCH_STORE_DIR=" + filepath.Join(h.dir, name, "store"),
		"ORGDISPATCH_LOG_LEVEL=info",
	}
	o.proc = h.process(name, h.bins.Orgdispatch, []string{command}, env)
	if err := o.Start(); err != nil {
		return nil, err
	}
	return o, nil
}

// waitReady polls the process's /readyz until it answers 2xx, failing when
// the process exits or ctx ends.
func (o *odProcess) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		if last = o.ready(ctx); last == nil {
			return nil
		}
		select {
		case <-o.Exited():
			return fmt.Errorf("faultsuite: %s exited (%v) before it was ready\n%s", o.Name, o.Err(), o.LogTail(3000))
		case <-ctx.Done():
			return fmt.Errorf("faultsuite: %s not ready within %s: %v\n%s", o.Name, readyTimeout, last, o.LogTail(3000))
		case <-time.After(pollInterval): // polling another process: nothing to wait on
		}
	}
}

func (o *odProcess) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+o.HTTPAddr+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET /readyz: %s", resp.Status)
	}
	return nil
}
