package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a JetStream cluster of real, in-process nats-servers clustered
// over loopback, each with its store in a t.TempDir(). It starts nothing
// until Start, so that a test can have clients meet a cluster that is still
// forming: a lone node has no JetStream meta leader (it needs a quorum of
// its configured peers).
type Cluster struct {
	t      testing.TB
	name   string
	routes []*url.URL // every node's route URL: JetStream needs them configured

	mu      sync.Mutex
	servers []*server.Server
}

// NewCluster returns a cluster of n nodes, none started; t.Cleanup shuts
// down those that were.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, name: fmt.Sprintf("orgdispatch-test-%d", time.Now().UnixNano()), servers: make([]*server.Server, n)}
	// Route ports are picked up front (a free port, released for the node
	// to take), since every node's configuration names all of them.
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: pick a route port: %v", err)
		}
		c.routes = append(c.routes, &url.URL{Scheme: "nats-route", Host: l.Addr().String()})
		l.Close()
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.servers {
			if s != nil {
				s.Shutdown()
				s.WaitForShutdown()
			}
		}
	})
	return c
}

// Start starts node i and waits until it accepts client connections.
func (c *Cluster) Start(i int) *server.Server {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	port, err := strconv.Atoi(c.routes[i].Port())
	if err != nil {
		c.t.Fatal(err)
	}
	opts := &server.Options{
		ServerName: fmt.Sprintf("n%d", i),
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   c.t.TempDir(),
		NoSigs:     true,
		NoLog:      true,
		Cluster:    server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: port},
		Routes:     c.routes,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		c.t.Fatalf("natstest: cluster node %d: %v", i, err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		c.t.Fatalf("natstest: cluster node %d not ready", i)
	}
	c.servers[i] = s
	return s
}

// ClientURL is node i's client URL (it must have been started).
func (c *Cluster) ClientURL(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i].ClientURL()
}

// HasMetaLeader reports whether any started node knows a JetStream meta
// leader.
func (c *Cluster) HasMetaLeader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.servers {
		if s != nil && s.JetStreamIsLeader() {
			return true
		}
	}
	return false
}
