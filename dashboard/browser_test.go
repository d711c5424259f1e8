package dashboard_test

// The browser tests drive Debian's headless chromium with chromedp. They live
// in package dashboard_test, beside the page they check, so that
// `go test ./dashboard/` is the one command that proves the dashboard works;
// being an external test package, they may import the packages that mount the
// dashboard (api) without an import cycle. One browser serves every test of the
// package (each test gets its own tab in a fresh browser context) to keep the
// run short.

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

// TestMain runs the tests, stops the shared browser, and then checks that
// nothing the tests started (stack, servers, browser connection) is still
// running.
func TestMain(m *testing.M) {
	code := m.Run()
	shared.close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// browserTimeout bounds each test's browser work. Waits inside it are
// condition polls, never sleeps.
const browserTimeout = 45 * time.Second

// shared is the package's one headless chromium, started by the first test
// that needs it.
var shared browser

type browser struct {
	once   sync.Once
	ctx    context.Context // a chromedp context that owns the browser
	cancel []context.CancelFunc
	err    error
}

// chromiumPath finds Debian's chromium: on PATH (as CI installs it) or at
// /usr/bin/chromium.
func chromiumPath() (string, error) {
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("chromium not found on PATH or at /usr/bin/chromium: the dashboard's browser tests need it; install it with `apt-get install chromium`")
}

func (b *browser) start() {
	path, err := chromiumPath()
	if err != nil {
		b.err = err
		return
	}
	// No UserDataDir option: chromedp then starts chromium with a fresh
	// temporary user-data-dir, and removes it (after killing any leftover
	// helper processes) when the allocator is cancelled.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1440, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	b.cancel = []context.CancelFunc{cancelBrowser, cancelAlloc}
	// No timeout on the first run: it would stop the whole browser later.
	if err := chromedp.Do(ctx); err != nil {
		b.err = fmt.Errorf("start %s: %w", path, err)
		return
	}
	b.ctx = ctx
}

// close stops the browser and waits for its process to exit.
func (b *browser) close() {
	for _, c := range b.cancel {
		c()
	}
}

// tab opens a new tab in a fresh browser context (own storage) on the shared
// browser. It records uncaught page exceptions and console.error calls, and
// fails the test at cleanup if there were any. A test fails here — never
// skips — when chromium is missing.
func tab(t *testing.T) context.Context {
	t.Helper()
	shared.once.Do(shared.start)
	if shared.err != nil {
		t.Fatalf("headless chromium: %v", shared.err)
	}
	ctx, cancel := chromedp.NewContext(shared.ctx, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, browserTimeout)
	var mu sync.Mutex
	var problems []string
	if err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "uncaught exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				msg = "console.error:"
				for _, a := range e.Args {
					msg += " " + string(a.Value) + a.Description
				}
			}
		}
		if msg != "" {
			mu.Lock()
			problems = append(problems, msg)
			mu.Unlock()
		}
	}); err != nil {
		cancelTimeout()
		cancel()
		t.Fatalf("open tab: %v", err)
	}
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("page: %s", p)
		}
	})
	return ctx
}

// run runs browser actions and fails the test with what it was doing.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", firstLine(expr), err)
	}
	return v
}

// waitFor polls a JavaScript condition in the page (on animation frames and
// DOM mutations) until it is truthy or the tab's deadline passes.
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(0))); err != nil {
		t.Fatalf("waiting until %s (%s): %v", what, firstLine(cond), err)
	}
}

// addInitScript makes the page run src before its own scripts on every load.
func addInitScript(source string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: source})
		return err
	})
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// screenshotDir is where screenshots go: $ORGDISPATCH_SCREENSHOT_DIR if set
// (a relative path is taken from the module root, so
// `ORGDISPATCH_SCREENSHOT_DIR=docs go test ./dashboard/` writes docs/…),
// else the test's temporary directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ORGDISPATCH_SCREENSHOT_DIR")
	if dir == "" {
		return t.TempDir()
	}
	if !filepath.IsAbs(dir) {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("ORGDISPATCH_SCREENSHOT_DIR=%s: %v", dir, err)
		}
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot dir: %v", err)
	}
	return dir
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// screenshot saves a full-page PNG as name in screenshotDir, checks that it
// decodes as a non-empty PNG, and returns its path.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot is not a valid PNG (%d bytes): %v", len(buf), err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 400 {
		t.Fatalf("screenshot is %dx%d, want at least 800x400", b.Dx(), b.Dy())
	}
	path := filepath.Join(screenshotDir(t), name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %s is missing or empty: %v", path, err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, fi.Size())
	return path
}
