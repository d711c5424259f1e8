// Package natstest starts a real, per-test, in-process NATS server with
// JetStream for integration tests: no mocks of NATS.
package natstest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/internal/natsserver"
)

// RunServer starts a JetStream server for t, with its store in t.TempDir()
// and its client port chosen at random on 127.0.0.1, and connects to it.
// t.Cleanup closes the connection and shuts the server down. It fails the
// test at once if the server cannot start.
func RunServer(t testing.TB) (*natsserver.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir(), Port: -1})
	if err != nil {
		t.Fatalf("natstest: start server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return srv, nc, js
}
