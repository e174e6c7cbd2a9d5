// Package proxy is a TCP proxy that can cut the path between two servers:
// while cut, its connections are reset (RST, as a crashed middlebox or a
// lost route would end them) and new ones are reset on accept, so neither
// end can get through until it heals.
package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// TCP forwards connections accepted on its address to one target.
type TCP struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	done  bool
}

// NewTCP listens on listen (e.g. "127.0.0.1:0") and forwards to target.
func NewTCP(listen, target string) (*TCP, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("proxy to %s: %w", target, err)
	}
	p := &TCP{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the address to dial instead of the target.
func (p *TCP) Addr() string { return p.ln.Addr().String() }

// SetCut cuts (true: resets every connection, and every new one until
// healed) or heals (false) the path.
func (p *TCP) SetCut(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = on
	if on {
		for c := range p.conns {
			reset(c)
			delete(p.conns, c)
		}
	}
}

// Close stops the proxy, closes its connections and waits for its goroutines.
func (p *TCP) Close() error {
	p.mu.Lock()
	p.done = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// track registers c; it reports false (and resets c) when the path is cut.
func (p *TCP) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.done {
		reset(c)
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *TCP) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *TCP) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			continue
		}
		p.wg.Go(func() { p.serve(in) })
	}
}

func (p *TCP) serve(in net.Conn) {
	defer p.untrack(in)
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(out) {
		return
	}
	defer p.untrack(out)
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if err == nil || errors.Is(err, net.ErrClosed) {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}
		// Either side failing ends both.
		if err != nil {
			src.Close()
			dst.Close()
		}
	}
	wg.Go(func() { pipe(out, in) })
	pipe(in, out)
	wg.Wait()
}
