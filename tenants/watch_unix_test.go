//go:build unix

package tenants

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWatcherSIGHUP sends SIGHUP to the test process itself, once the
// watcher's handler is installed (Ready), and sees the file reloaded.
func TestWatcherSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.yaml")
	writeFile(t, path, watchDoc)
	cur, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	changes := make(chan *File, 1)
	logs := &logBuf{}
	w, err := NewWatcher(WatchConfig{
		Path:     path,
		Current:  cur,
		OnChange: func(_ context.Context, f *File) error { changes <- f; return nil },
		Interval: -1, // SIGHUP only
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-w.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("watcher not ready within 10s")
	}

	writeFile(t, path, strings.Replace(watchDoc, "{concurrency: 2}", "{concurrency: 7}", 1))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-changes:
		if f.Tenants[0].Concurrency != 7 {
			t.Errorf("reloaded concurrency %d, want 7", f.Tenants[0].Concurrency)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no reload within 10s of SIGHUP\nlog:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "tenants reload requested") {
		t.Errorf("log:\n%s", logs.String())
	}
}
