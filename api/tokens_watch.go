package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// DefaultTokensPoll is how often a TokensWatcher looks at its file.
const DefaultTokensPoll = 2 * time.Second

// TokensWatcherConfig configures a TokensWatcher.
type TokensWatcherConfig struct {
	// Path is the tokens file (ORGDISPATCH_API_TOKENS_FILE). Required.
	Path string
	// Apply receives each new valid set (Server.SetTokens,
	// MetricsGuard.SetTokens). Required.
	Apply func(*Tokens)
	// Current is the set the server runs with (from LoadTokens at start).
	Current *Tokens
	// Interval between looks at the file (and token files, token_env
	// values); default DefaultTokensPoll. SIGHUP also reloads at once.
	Interval time.Duration
	// Load reads the file; nil means LoadTokens.
	Load func(path string) (*Tokens, error)
	// OnReload, when set, is called after each look that found a change:
	// with nil when the new set was applied, with the error when the file
	// was rejected (the old set stays). For tests.
	OnReload func(error)
	// Logger receives what changed (token names, never tokens); nil discards.
	Logger *slog.Logger
}

// TokensWatcher reloads the API tokens file while it runs: a new valid
// version replaces the server's scoped tokens; an invalid one is logged
// (without any token) and ignored, so a bad edit never locks everyone out
// or lets anyone in.
type TokensWatcher struct {
	cfg     TokensWatcherConfig
	current [32]byte
	bad     string // the last rejection logged, to log each once
}

// NewTokensWatcher validates cfg.
func NewTokensWatcher(cfg TokensWatcherConfig) (*TokensWatcher, error) {
	if cfg.Path == "" || cfg.Apply == nil {
		return nil, errors.New("api: tokens watcher: Path and Apply are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultTokensPoll
	}
	if cfg.Load == nil {
		cfg.Load = LoadTokens
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &TokensWatcher{cfg: cfg, current: cfg.Current.fingerprint()}, nil
}

// Run watches until ctx ends; it returns nil then.
func (w *TokensWatcher) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-hup:
		}
		w.Check()
	}
}

// Check looks at the file once and applies a changed, valid version.
func (w *TokensWatcher) Check() {
	ts, err := w.cfg.Load(w.cfg.Path)
	if err != nil {
		if msg := err.Error(); msg != w.bad {
			w.bad = msg
			w.cfg.Logger.Error("api tokens file rejected; the tokens in use stay", "file", w.cfg.Path, "error", err)
			if w.cfg.OnReload != nil {
				w.cfg.OnReload(err)
			}
		}
		return
	}
	w.bad = ""
	fp := ts.fingerprint()
	if fp == w.current {
		return
	}
	w.current = fp
	w.cfg.Apply(ts)
	w.cfg.Logger.Info("api tokens reloaded", "file", w.cfg.Path, "tokens", ts.Names())
	if w.cfg.OnReload != nil {
		w.cfg.OnReload(nil)
	}
}
