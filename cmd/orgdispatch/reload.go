package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/orgdispatch/orgdispatch/dispatcher"
	"github.com/orgdispatch/orgdispatch/internal/reload"
	"github.com/orgdispatch/orgdispatch/tenants"
)

// watchTenants reloads the tenants file while ctx lasts — when its content
// (or a client_secret_file it names) changes, and on SIGHUP — and applies
// each new valid version to the node: consumers of added and changed
// tenants, and the worker pool's lanes when the node has one (serve,
// worker; not api). A bad file is logged and ignored. It returns when ctx
// ends.
func watchTenants(ctx context.Context, n *node) error {
	rec, err := reload.New(reload.Config{JS: n.js, Names: n.names, Streams: n.cfg.StreamConfig(), Pool: n.pool, Logger: n.logger,
		Audit: dispatcher.NewAuditor(n.js, n.names), Replica: n.cfg.ReplicaID}, n.tenants.Tenants)
	if err != nil {
		return fmt.Errorf("tenants reload: %w", err)
	}
	w, err := tenants.NewWatcher(tenants.WatchConfig{
		Path:     n.cfg.TenantsFile,
		Current:  n.tenants,
		OnChange: rec.Apply,
		Logger:   n.logger,
	})
	if err != nil {
		return fmt.Errorf("tenants reload: %w", err)
	}
	return w.Run(ctx)
}

// keepRunningOnHangup makes SIGHUP harmless from the start of a long-running
// command: it means "reload the tenants file", never "stop". Until the tenants
// watcher listens for it (and in `api` without a tenants file, always), its
// default action would end the process without a graceful shutdown; compose
// documents `docker compose kill -s HUP worker api`. The watcher's own
// signal.Notify takes SIGHUP over once it runs.
func keepRunningOnHangup() { signal.Ignore(syscall.SIGHUP) }
