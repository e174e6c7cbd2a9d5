// Package udprelay forwards UDP datagrams from clients on a listen address
// to one target, and the answers back, handing every datagram to a hook
// that decides its fate: forward it, drop it or write it later. It is the
// plumbing under the test relays (impair's fault-injecting UDPRelay, the
// demo's cuttable path); it applies no policy of its own.
package udprelay

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// Direction is the way a datagram travels through the relay.
type Direction uint8

// Directions of a datagram.
const (
	Forward  Direction = iota + 1 // client to target
	Backward                      // target to client
)

func (d Direction) String() string {
	switch d {
	case Forward:
		return "forward"
	case Backward:
		return "backward"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Hook decides the fate of one datagram b travelling in dir. It forwards b
// by calling write, at once or later from any goroutine, any number of
// times (zero drops it). b belongs to the relay and is valid only until
// the hook returns: write(b) during the call is fine, a later write needs
// a copy. The hook runs on the relay's reading goroutines: every Forward
// call on the one reading the listen socket, the Backward calls on one per
// client. Calls may thus run concurrently, and a hook that blocks stalls
// what that goroutine reads (in Forward, every client).
// write is safe for concurrent use and ignores errors (a datagram is best
// effort); once Close has returned it sends nothing.
type Hook func(dir Direction, b []byte, write func([]byte))

// Relay forwards datagrams between its clients and one target. Each client
// address gets its own upstream socket, as NAT would, so the target sees
// one peer per client. Sessions last until Close.
type Relay struct {
	ln     *net.UDPConn
	target *net.UDPAddr
	hook   Hook

	mu       sync.Mutex
	sessions map[string]*net.UDPConn // client address -> upstream socket; guarded by mu
	closed   bool                    // guarded by mu
	wg       sync.WaitGroup          // the goroutines reading ln and the upstream sockets
}

// New listens on listen (e.g. "127.0.0.1:0") and relays to target, passing
// every datagram through hook; a nil hook forwards everything unchanged.
func New(listen, target string, hook Hook) (*Relay, error) {
	la, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return nil, err
	}
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	if hook == nil {
		hook = func(_ Direction, b []byte, write func([]byte)) { write(b) }
	}
	r := &Relay{ln: ln, target: ta, hook: hook, sessions: map[string]*net.UDPConn{}}
	r.wg.Go(r.serve)
	return r, nil
}

// Addr is the relay's listen address: dial this instead of the target.
func (r *Relay) Addr() string { return r.ln.LocalAddr().String() }

// serve reads the clients' datagrams and forwards them upstream.
func (r *Relay) serve() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := r.ln.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		up, ok := r.session(from)
		if !ok {
			return // closed
		}
		if up == nil {
			continue // no upstream socket for this client: the datagram is lost
		}
		r.hook(Forward, buf[:n], func(p []byte) { _, _ = up.Write(p) })
	}
}

// session returns from's upstream socket, opening it (and the goroutine
// reading its answers) on first use. ok is false once the relay is closed;
// up is nil if the socket could not be opened.
func (r *Relay) session(from *net.UDPAddr) (up *net.UDPConn, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false
	}
	key := from.String()
	if up := r.sessions[key]; up != nil {
		return up, true
	}
	up, err := net.DialUDP("udp", nil, r.target)
	if err != nil {
		return nil, true
	}
	r.sessions[key] = up
	r.wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // e.g. ICMP port unreachable while the target restarts
			}
			r.hook(Backward, buf[:n], func(p []byte) { _, _ = r.ln.WriteToUDP(p, from) })
		}
	})
	return up, true
}

// Close closes the listen and upstream sockets and waits for the relay's
// goroutines, so no hook call is running or starts once it returns. It is
// safe to call more than once; later calls wait the same way and return nil.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.wg.Wait()
		return nil
	}
	r.closed = true
	for _, s := range r.sessions {
		s.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	return err
}
