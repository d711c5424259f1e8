package faultsuite

import (
	"fmt"
	"io"
	"net"
	"sync"
)

// tokenGate is a TCP forwarder on 127.0.0.1 in front of the platform that
// can be shut: shut, its port refuses connections (nothing listens) and the
// connections it was forwarding are cut — the token endpoint is unreachable
// for whoever was given the gate's address. Opened again, it listens on
// the same port.
type tokenGate struct {
	target string // host:port forwarded to

	mu    sync.Mutex
	addr  string // host:port of the gate
	ln    net.Listener
	conns map[net.Conn]bool
}

// newTokenGate opens a gate forwarding to target (host:port).
func newTokenGate(target string) (*tokenGate, error) {
	g := &tokenGate{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultsuite: token gate: %w", err)
	}
	g.addr = ln.Addr().String()
	g.serve(ln)
	return g, nil
}

func (g *tokenGate) serve(ln net.Listener) {
	g.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go g.forward(c)
		}
	}()
}

func (g *tokenGate) forward(c net.Conn) {
	up, err := net.Dial("tcp", g.target)
	if err != nil {
		c.Close()
		return
	}
	g.mu.Lock()
	if g.ln == nil {
		g.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	g.conns[c], g.conns[up] = true, true
	g.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
	<-done
	g.mu.Lock()
	delete(g.conns, c)
	delete(g.conns, up)
	g.mu.Unlock()
}

// shut stops listening and cuts the forwarded connections.
func (g *tokenGate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		g.ln.Close()
		g.ln = nil
	}
	for c := range g.conns {
		c.Close()
	}
}

// open listens again on the gate's port.
func (g *tokenGate) open() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		return fmt.Errorf("faultsuite: reopen token gate on %s: %w", g.addr, err)
	}
	g.serve(ln)
	return nil
}

// url is the gate's base URL.
func (g *tokenGate) url() string { return "http://" + g.addr }

// close shuts the gate for good.
func (g *tokenGate) close() { g.shut() }
