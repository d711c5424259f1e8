package tenants

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// watchEnv is a tenants file on disk with a Watcher over it, run in the
// background; changes holds what OnChange was given.
type watchEnv struct {
	path    string
	w       *Watcher
	log     *logBuf
	changes chan *File
	trigger chan struct{}
	// fail, when it holds errors, makes OnChange return the next one.
	mu   sync.Mutex
	fail []error
}

const watchDoc = `defaults: {concurrency: 2}
tenants:
  - id: org_1
    client_id: client_org1
    client_secret: s3cr3t-one
    api_base: http://127.0.0.1:9090
    token_url: http://127.0.0.1:9090/oauth/token
  - id: org_2
    client_id: client_org2
    client_secret: s3cr3t-two
    api_base: http://127.0.0.1:9090
    token_url: http://127.0.0.1:9090/oauth/token
`

func writeFile(t *testing.T, path, doc string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startWatch writes doc, loads it and runs a watcher polling every
// DefaultWatchInterval until the test ends. Call it inside a synctest bubble.
func startWatch(t *testing.T, doc string, interval time.Duration) *watchEnv {
	t.Helper()
	e := &watchEnv{
		path:    filepath.Join(t.TempDir(), "tenants.yaml"),
		log:     &logBuf{},
		changes: make(chan *File, 10),
		trigger: make(chan struct{}),
	}
	writeFile(t, e.path, doc)
	cur, err := Load(e.path)
	if err != nil {
		t.Fatal(err)
	}
	e.w, err = NewWatcher(WatchConfig{
		Path:    e.path,
		Current: cur,
		OnChange: func(ctx context.Context, f *File) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if len(e.fail) > 0 {
				err := e.fail[0]
				e.fail = e.fail[1:]
				return err
			}
			e.changes <- f
			return nil
		},
		Interval: interval,
		Trigger:  e.trigger,
		Logger:   slog.New(slog.NewTextHandler(e.log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
	<-e.w.Ready()
	return e
}

// settle lets the watcher poll once more and waits until it is idle.
func settle() {
	time.Sleep(DefaultWatchInterval)
	synctest.Wait()
}

func (e *watchEnv) noChange(t *testing.T) {
	t.Helper()
	select {
	case f := <-e.changes:
		t.Fatalf("OnChange called with %d tenants, want no call", len(f.Tenants))
	default:
	}
}

func (e *watchEnv) change(t *testing.T) *File {
	t.Helper()
	select {
	case f := <-e.changes:
		return f
	default:
		t.Fatalf("OnChange not called\nlog:\n%s", e.log.String())
		return nil
	}
}

func TestWatcherPollsForChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startWatch(t, watchDoc, 0)
		settle()
		e.noChange(t)

		// The same bytes written again, and a comment added: no change of
		// tenants, no call.
		writeFile(t, e.path, watchDoc)
		settle()
		writeFile(t, e.path, "# a comment\n"+watchDoc)
		settle()
		e.noChange(t)

		// A tenant added and a limit changed.
		doc := strings.Replace(watchDoc, "{concurrency: 2}", "{concurrency: 5}", 1) + `  - id: org_3
    client_id: client_org3
    client_secret: s3cr3t-three
    api_base: http://127.0.0.1:9090
    token_url: http://127.0.0.1:9090/oauth/token
`
		writeFile(t, e.path, doc)
		settle()
		f := e.change(t)
		if len(f.Tenants) != 3 || f.Tenants[2].ID != "org_3" || f.Tenants[0].Concurrency != 5 {
			t.Fatalf("OnChange got %+v", f.Tenants)
		}
		if e.w.Current() != f {
			t.Error("Current is not the accepted file")
		}
		settle()
		e.noChange(t) // once only
		if s := e.log.String(); !strings.Contains(s, "tenants reloaded") || strings.Contains(s, "s3cr3t") {
			t.Errorf("log:\n%s", s)
		}
	})
}

func TestWatcherSeesRotatedSecretFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		secret := filepath.Join(t.TempDir(), "org1-secret")
		writeFile(t, secret, "old-secret\n")
		doc := strings.Replace(watchDoc, "client_secret: s3cr3t-one", "client_secret_file: "+secret, 1)
		e := startWatch(t, doc, 0)

		writeFile(t, secret, "new-secret\n")
		settle()
		f := e.change(t)
		if got, _ := f.Get("org_1"); got.ClientSecret.Reveal() != "new-secret" {
			t.Errorf("org_1's secret after rotation: %q", got.ClientSecret.Reveal())
		}
		if strings.Contains(e.log.String(), "new-secret") {
			t.Errorf("log shows the secret:\n%s", e.log.String())
		}
	})
}

func TestWatcherRejectsBadFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startWatch(t, watchDoc, 0)
		before := e.w.Current()

		bad := strings.Replace(watchDoc, "    client_secret: s3cr3t-two\n", "    client_secret: s3cr3t-two\n    rate_per_minut: 10\n", 1)
		writeFile(t, e.path, bad)
		settle()
		settle() // a second poll of the same bad file logs nothing new
		e.noChange(t)
		if e.w.Current() != before {
			t.Error("a rejected file replaced the running tenants")
		}
		log := e.log.String()
		if !strings.Contains(log, "tenants file rejected; the running tenants stay") ||
			!strings.Contains(log, "tenant=org_2") || !strings.Contains(log, "rate_per_minut") {
			t.Errorf("the log does not name the tenant and the field:\n%s", log)
		}
		if n := strings.Count(log, "tenants file rejected"); n != 1 {
			t.Errorf("rejection logged %d times, want once per distinct file:\n%s", n, log)
		}
		if strings.Contains(log, "s3cr3t") {
			t.Errorf("log shows a secret:\n%s", log)
		}

		// A missing file is no reason to drop tenants either.
		if err := os.Remove(e.path); err != nil {
			t.Fatal(err)
		}
		settle()
		e.noChange(t)
		if !strings.Contains(e.log.String(), "tenants file unreadable; the running tenants stay") {
			t.Errorf("log:\n%s", e.log.String())
		}

		// Fixed: the fixed file is taken, and the change is applied.
		writeFile(t, e.path, strings.Replace(bad, "rate_per_minut: 10", "rate_per_minute: 10", 1))
		settle()
		f := e.change(t)
		if got, _ := f.Get("org_2"); got.RatePerMinute != 10 {
			t.Errorf("org_2's rate = %d, want 10", got.RatePerMinute)
		}
	})
}

func TestWatcherTrigger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startWatch(t, watchDoc, -1) // no polling: triggers only

		e.trigger <- struct{}{}
		synctest.Wait()
		e.noChange(t)
		if !strings.Contains(e.log.String(), "tenants file unchanged") {
			t.Errorf("log:\n%s", e.log.String())
		}

		writeFile(t, e.path, strings.Replace(watchDoc, "client_id: client_org2", "client_id: client_org2b", 1))
		time.Sleep(time.Hour)
		synctest.Wait()
		e.noChange(t) // not polling

		e.trigger <- struct{}{}
		synctest.Wait()
		f := e.change(t)
		if got, _ := f.Get("org_2"); got.ClientID != "client_org2b" {
			t.Errorf("org_2's client id = %q", got.ClientID)
		}
	})
}

func TestWatcherRetriesFailedApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := startWatch(t, watchDoc, 0)
		e.mu.Lock()
		e.fail = []error{errors.New("NATS is away")}
		e.mu.Unlock()
		before := e.w.Current()

		writeFile(t, e.path, strings.Replace(watchDoc, "{concurrency: 2}", "{concurrency: 3}", 1))
		settle()
		e.noChange(t)
		if e.w.Current() != before {
			t.Error("Current changed although OnChange failed")
		}
		if !strings.Contains(e.log.String(), "NATS is away") {
			t.Errorf("log:\n%s", e.log.String())
		}
		settle() // the next poll tries again
		if f := e.change(t); f.Tenants[0].Concurrency != 3 || e.w.Current() != f {
			t.Errorf("retry applied %+v", f.Tenants[0])
		}
	})
}

func TestNewWatcherValidates(t *testing.T) {
	f := &File{}
	apply := func(context.Context, *File) error { return nil }
	for name, cfg := range map[string]WatchConfig{
		"no path":      {Current: f, OnChange: apply},
		"no current":   {Path: "x", OnChange: apply},
		"no on change": {Path: "x", Current: f},
	} {
		if _, err := NewWatcher(cfg); err == nil {
			t.Errorf("%s: NewWatcher accepted it", name)
		}
	}
}
