package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orgdispatch/orgdispatch/dispatcher"
)

// startCluster starts n nats-servers with JetStream clustered over loopback
// in this process (as natstest.Cluster does for tests), each with its store
// in dir/n<i>, and waits until each accepts client connections. Whoever
// calls it under a CPU profile label gives the servers that label.
func startCluster(dir string, n int) (_ []*server.Server, err error) {
	// Route ports are picked up front (a free port, released for the node to
	// take), since every node's configuration names all of them.
	routes := make([]*url.URL, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("bench: cluster: pick a route port: %w", err)
		}
		routes[i] = &url.URL{Scheme: "nats-route", Host: l.Addr().String()}
		l.Close()
	}
	name := fmt.Sprintf("orgdispatch-bench-%d", time.Now().UnixNano())
	var nodes []*server.Server
	defer func() {
		if err != nil {
			for _, s := range nodes {
				s.Shutdown()
				s.WaitForShutdown()
			}
		}
	}()
	for i := range n {
		port, err := strconv.Atoi(routes[i].Port())
		if err != nil {
			return nil, fmt.Errorf("bench: cluster: %w", err)
		}
		s, err := server.NewServer(&server.Options{
			ServerName: clusterNodeName(i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   filepath.Join(dir, clusterNodeName(i)),
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: name, Host: "127.0.0.1", Port: port},
			Routes:     routes,
		})
		if err != nil {
			return nil, fmt.Errorf("bench: cluster node %d: %w", i, err)
		}
		s.Start()
		nodes = append(nodes, s)
	}
	for i, s := range nodes {
		if !s.ReadyForConnections(10 * time.Second) {
			return nil, fmt.Errorf("bench: cluster node %d not ready for connections after 10s", i)
		}
	}
	return nodes, nil
}

func clusterNodeName(i int) string { return "n" + strconv.Itoa(i) }

// NodeLeaders is how many stream and consumer leaders one server holds.
type NodeLeaders struct {
	Node string `json:"node"`
	// JobsStreams counts the jobs streams (shards) it leads, OtherStreams
	// the dead-letter and audit streams and the buckets.
	JobsStreams  int `json:"jobs_streams"`
	OtherStreams int `json:"other_streams"`
	// Consumers counts the tenant consumers it leads.
	Consumers int `json:"tenant_consumers"`
}

// leaderSpread counts, per server, the leaders of names' streams (from
// StreamInfo.Cluster.Leader) and of the jobs streams' consumers (from
// ConsumerInfo.Cluster.Leader). A stream or consumer without a leader at
// the moment counts under "(none)". It returns nil when the server is not
// clustered (its streams report no cluster name).
func leaderSpread(ctx context.Context, js jetstream.JetStream, names dispatcher.Names) ([]NodeLeaders, error) {
	byNode := map[string]*NodeLeaders{}
	clustered := false
	at := func(c *jetstream.ClusterInfo) *NodeLeaders {
		node := "(none)"
		if c != nil && c.Leader != "" {
			node = c.Leader
		}
		if byNode[node] == nil {
			byNode[node] = &NodeLeaders{Node: node}
		}
		return byNode[node]
	}
	owned, err := ownedStreams(ctx, js, names)
	if err != nil {
		return nil, err
	}
	for _, name := range owned {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bench: stream %s: %w", name, err)
		}
		info := s.CachedInfo()
		if info.Cluster == nil || info.Cluster.Name == "" {
			continue // a single server's
		}
		clustered = true
		if !names.IsJobsStream(name) {
			at(info.Cluster).OtherStreams++
			continue
		}
		at(info.Cluster).JobsStreams++
		list := s.ListConsumers(ctx)
		for ci := range list.Info() {
			if _, ok := names.TenantOfConsumer(ci.Name); ok {
				at(ci.Cluster).Consumers++
			}
		}
		if err := list.Err(); err != nil {
			return nil, fmt.Errorf("bench: consumers of %s: %w", name, err)
		}
	}
	if !clustered {
		return nil, nil
	}
	out := make([]NodeLeaders, 0, len(byNode))
	for _, l := range byNode {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b NodeLeaders) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}
