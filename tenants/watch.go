package tenants

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"sync"
	"syscall"
	"time"
)

// DefaultWatchInterval is how often a Watcher looks at the tenants file.
const DefaultWatchInterval = 2 * time.Second

// WatchConfig configures a Watcher.
type WatchConfig struct {
	// Path is the tenants file.
	Path string
	// Current is the tenants file in use when the watcher starts (as Load
	// returned it). Required.
	Current *File
	// OnChange applies a new, valid tenants file whose tenants differ from
	// the current ones. It runs on the watcher's goroutine, one call at a
	// time. When it returns an error the watcher logs it and calls it again
	// with the file then on disk at the next poll or trigger: OnChange must
	// be safe to repeat. Required.
	OnChange func(ctx context.Context, f *File) error
	// Interval is how often the file (and the secret files it names) is
	// read and compared with what was last seen; default
	// DefaultWatchInterval. Negative: no polling, triggers only.
	Interval time.Duration
	// Trigger forces a reload on each receive (the file is parsed again
	// even if its bytes did not change). nil: Run reloads on SIGHUP, with a
	// handler it installs for its lifetime (see Watcher.Ready).
	Trigger <-chan struct{}
	// Logger receives reloads and rejected files; nil discards.
	Logger *slog.Logger
	// LookupEnv and ReadFile are what Parse reads secrets with; defaults
	// os.LookupEnv and os.ReadFile. ReadFile also reads the tenants file.
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
}

// Watcher reloads the tenants file when it changes and on SIGHUP (or
// WatchConfig.Trigger), and hands each new valid set of tenants to
// OnChange. A file that does not parse or validate is rejected: every
// problem is logged with the tenant and the field it concerns, and the
// running tenants stay as they are.
//
// Changes are found by polling, not by file-system notifications (no
// notification library is among orgdispatch's dependencies, and polling
// also works on the network and container file systems where
// notifications are unreliable, e.g. Kubernetes ConfigMap and Secret
// volumes, which are swapped by symlink): every Interval the watcher reads
// the tenants file and the secret files it names (client_secret_file) and
// compares their SHA-256 with what it last saw. Only when they differ does
// it parse the file; only when the parsed tenants differ from the current
// ones does it call OnChange. Secrets taken from environment variables
// cannot change while the process runs.
type Watcher struct {
	cfg   WatchConfig
	log   *slog.Logger
	ready chan struct{}

	mu      sync.Mutex
	current *File

	// Owned by Run's goroutine.
	lastSum     [sha256.Size]byte
	haveSum     bool
	secretFiles []string // secret files the last parse read, in order
}

// NewWatcher checks cfg and returns a Watcher. Nothing happens until Run.
func NewWatcher(cfg WatchConfig) (*Watcher, error) {
	if cfg.Path == "" {
		return nil, errors.New("tenants: watch: Path is required")
	}
	if cfg.Current == nil {
		return nil, errors.New("tenants: watch: Current is required")
	}
	if cfg.OnChange == nil {
		return nil, errors.New("tenants: watch: OnChange is required")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultWatchInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.LookupEnv == nil {
		cfg.LookupEnv = os.LookupEnv
	}
	if cfg.ReadFile == nil {
		cfg.ReadFile = os.ReadFile
	}
	return &Watcher{
		cfg:     cfg,
		log:     cfg.Logger.With("file", cfg.Path),
		ready:   make(chan struct{}),
		current: cfg.Current,
	}, nil
}

// Current returns the tenants in use: the initial file, or the last one
// OnChange accepted.
func (w *Watcher) Current() *File {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// Ready is closed once Run watches: its SIGHUP handler (when it installs
// one) is in place and the file has been looked at once.
func (w *Watcher) Ready() <-chan struct{} { return w.ready }

// Run watches until ctx is done, then returns nil. It first looks at the
// file once, so a change made between Load and Run is not missed. Call it
// once.
func (w *Watcher) Run(ctx context.Context) error {
	trigger := w.cfg.Trigger
	if trigger == nil {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGHUP)
		defer signal.Stop(sig)
		fwd := make(chan struct{})
		trigger = fwd
		go func() {
			for {
				select {
				case <-sig:
					select {
					case fwd <- struct{}{}:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	var tick <-chan time.Time
	if w.cfg.Interval > 0 {
		t := time.NewTicker(w.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}

	w.check(ctx, false)
	close(w.ready)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			w.check(ctx, false)
		case <-trigger:
			w.log.Info("tenants reload requested")
			w.check(ctx, true)
		}
	}
}

// check reads the file and its secret files; when they changed since the
// last look (or force), it parses them and applies a valid, different set.
func (w *Watcher) check(ctx context.Context, force bool) {
	data, err := w.cfg.ReadFile(w.cfg.Path)
	if err != nil {
		// Not fatal: an editor may be replacing the file. Report each
		// distinct failure once.
		sum := sha256.Sum256([]byte("read error: " + err.Error()))
		if force || !w.haveSum || sum != w.lastSum {
			w.log.Error("tenants file unreadable; the running tenants stay", "error", err)
		}
		w.lastSum, w.haveSum = sum, true
		return
	}
	sum := w.fingerprint(data)
	if !force && w.haveSum && sum == w.lastSum {
		return
	}

	var read []string
	readFile := func(name string) ([]byte, error) {
		read = append(read, name)
		return w.cfg.ReadFile(name)
	}
	f, err := Parse(data, w.cfg.LookupEnv, readFile)
	w.secretFiles = read
	// The fingerprint must cover the secret files this parse read (it may
	// name other ones than the last): take it again.
	sum = w.fingerprint(data)
	if err != nil {
		if force || !w.haveSum || sum != w.lastSum {
			w.logRejected(err)
		}
		w.lastSum, w.haveSum = sum, true
		return
	}

	cur := w.Current()
	if sameTenants(cur, f) {
		w.lastSum, w.haveSum = sum, true
		if force {
			w.log.Info("tenants file unchanged", "tenants", len(f.Tenants))
		}
		return
	}
	if err := w.cfg.OnChange(ctx, f); err != nil {
		// Leave lastSum as it was, so the next poll tries again.
		w.log.Error("applying the reloaded tenants failed; retrying at the next poll", "error", err)
		return
	}
	w.mu.Lock()
	w.current = f
	w.mu.Unlock()
	w.lastSum, w.haveSum = sum, true
	w.log.Info("tenants reloaded", "tenants", len(f.Tenants))
}

// fingerprint hashes the tenants file and the secret files the last parse
// read (their content, or their read error).
func (w *Watcher) fingerprint(data []byte) [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d:", len(data))
	h.Write(data)
	for _, name := range w.secretFiles {
		b, err := w.cfg.ReadFile(name)
		if err != nil {
			b = []byte("error: " + err.Error())
		}
		fmt.Fprintf(h, "\x00%s\x00%d:", name, len(b))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// logRejected logs each problem of a rejected file on its own line, with
// the tenant it concerns.
func (w *Watcher) logRejected(err error) {
	var problems []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		problems = j.Unwrap()
	} else {
		problems = []error{err}
	}
	w.log.Error("tenants file rejected; the running tenants stay", "problems", len(problems))
	for _, p := range problems {
		var fe *FieldError
		if errors.As(p, &fe) {
			w.log.Error("tenants file problem", "tenant", fe.Tenant, "where", fe.Where, "line", fe.Line, "error", fe.Msg)
			continue
		}
		w.log.Error("tenants file problem", "error", p)
	}
}

// sameTenants reports whether a and b hold the same tenants with the same
// settings and secrets, in the same order.
func sameTenants(a, b *File) bool {
	return slices.EqualFunc(a.Tenants, b.Tenants, func(x, y Tenant) bool { return reflect.DeepEqual(x, y) })
}
