// Package testproxy is a TCP proxy for tests: put it in front of an
// in-process emulator (pstest, kumo) and restart it to drop every connection
// and refuse new ones for a moment, as a server restart or a network outage
// would, while the emulator keeps its state.
package testproxy

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards the connections it accepts to a target address.
type Proxy struct {
	target string
	addr   string // fixed after the first listen

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// Start listens on a free loopback port and forwards to target until the
// test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	p.listen(t)
	t.Cleanup(p.Stop)
	return p
}

func (p *Proxy) listen(t testing.TB) {
	t.Helper()
	var (
		ln  net.Listener
		err error
	)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ln, err = net.Listen("tcp", p.addr); err == nil || time.Now().After(deadline) {
			break
		}
		<-time.After(20 * time.Millisecond) // the port may take a moment to be free
	}
	if err != nil {
		t.Fatalf("proxy: listen on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go p.serve(ln)
}

func (p *Proxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Addr is the proxy's address, the same across restarts.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Stop closes the listener and every connection.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
	}
	for c := range p.conns {
		c.Close()
	}
}

// Restart drops everything and listens again on the same address after an
// outage of about 200 ms.
func (p *Proxy) Restart(t *testing.T) {
	t.Helper()
	p.Stop()
	<-time.After(200 * time.Millisecond)
	p.listen(t)
}
