package faultsuite

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsNode is one nats-server process with JetStream on: a single server,
// or one node of a cluster. Its ports and store directory stay the same
// across restarts, so a restarted node is the same server.
type natsNode struct {
	*proc
	// ServerName is the node's server name (-n), as stream and consumer
	// cluster info name their leaders.
	ServerName string
	ClientPort int
	// ClusterPort is the route port; 0 for a single server.
	ClusterPort int
	StoreDir    string
}

// URL is the node's client URL.
func (n *natsNode) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.ClientPort) }

// startNATS starts size nats-servers: one single server for size 1, a
// JetStream cluster of size nodes routed to each other otherwise. All listen
// on 127.0.0.1 only, on free ports, each with its own store directory. It
// returns once every node serves JetStream.
func (h *harness) startNATS(ctx context.Context, size int) ([]*natsNode, error) {
	nodes := make([]*natsNode, size)
	for i := range nodes {
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		n := &natsNode{ServerName: fmt.Sprintf("nats-%d", i+1), ClientPort: cp}
		if size > 1 {
			if n.ClusterPort, err = freePort(); err != nil {
				return nil, err
			}
		}
		n.StoreDir = filepath.Join(h.dir, n.ServerName, "store")
		if err := os.MkdirAll(n.StoreDir, 0o755); err != nil {
			return nil, fmt.Errorf("faultsuite: %w", err)
		}
		nodes[i] = n
	}
	for _, n := range nodes {
		args := []string{"-a", "127.0.0.1", "-p", strconv.Itoa(n.ClientPort), "-js", "-sd", n.StoreDir, "-n", n.ServerName}
		if size > 1 {
			var routes []string
			for _, o := range nodes {
				if o != n {
					routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(o.ClusterPort))
				}
			}
			args = append(args, "--cluster_name", "faultsuite", "--cluster", "nats://127.0.0.1:"+strconv.Itoa(n.ClusterPort), "--routes", strings.Join(routes, ","))
		}
		n.proc = h.process(n.ServerName, h.bins.NATSServer, args, nil)
		if err := n.Start(); err != nil {
			return nil, err
		}
	}
	for _, n := range nodes {
		if err := n.waitReady(ctx); err != nil {
			return nil, err
		}
	}
	return nodes, nil
}

// waitReady waits until the node accepts a client and answers JetStream
// account info (in a cluster: once a meta leader is elected), failing when
// the process exits or ctx ends.
func (n *natsNode) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		if last = n.ready(ctx); last == nil {
			return nil
		}
		select {
		case <-n.Exited():
			return fmt.Errorf("faultsuite: %s exited (%v) before it was ready\n%s", n.Name, n.Err(), n.LogTail(3000))
		case <-ctx.Done():
			return fmt.Errorf("faultsuite: %s not ready within %s: %v\n%s", n.Name, readyTimeout, last, n.LogTail(3000))
		case <-time.After(pollInterval): // polling another process: nothing to wait on
		}
	}
}

func (n *natsNode) ready(ctx context.Context) error {
	nc, err := nats.Connect(n.URL(), nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("faultsuite: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
