// Package impair is a user-space impairment relay: it forwards UDP
// datagrams between a client and a server and can cut the path (a blackhole:
// packets vanish, no FIN, no RST), drop a share of packets, or delay them.
// Tests, the demo and the chaos suite put it between two daemons where the
// kernel has no netem.
package impair

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// UDPRelay forwards datagrams from clients on its listen address to one
// target, and the answers back. Each client address gets its own upstream
// socket, as NAT would.
type UDPRelay struct {
	ln     *net.UDPConn
	target *net.UDPAddr

	blackhole atomic.Bool
	lossPPM   atomic.Uint32 // drop probability in parts per million
	delayNS   atomic.Int64  // one-way delay added to every datagram

	Forwarded atomic.Uint64 // datagrams forwarded (both directions)
	Dropped   atomic.Uint64 // datagrams dropped (blackhole or loss)

	mu       sync.Mutex
	sessions map[string]*net.UDPConn // client address -> upstream socket; guarded by mu
	closed   bool                    // guarded by mu
	wg       sync.WaitGroup
}

// NewUDPRelay listens on listen (e.g. "127.0.0.1:0") and forwards to target.
func NewUDPRelay(listen, target string) (*UDPRelay, error) {
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
	r := &UDPRelay{ln: ln, target: ta, sessions: map[string]*net.UDPConn{}}
	r.wg.Go(r.serve)
	return r, nil
}

// Addr is the relay's listen address: dial this instead of the target.
func (r *UDPRelay) Addr() string { return r.ln.LocalAddr().String() }

// SetBlackhole cuts (true) or heals (false) the path in both directions.
func (r *UDPRelay) SetBlackhole(on bool) { r.blackhole.Store(on) }

// SetLoss drops each datagram with probability p (0..1).
func (r *UDPRelay) SetLoss(p float64) { r.lossPPM.Store(uint32(p * 1e6)) }

// SetDelay delays every datagram by d (one way).
func (r *UDPRelay) SetDelay(d time.Duration) { r.delayNS.Store(int64(d)) }

func (r *UDPRelay) pass() bool {
	if r.blackhole.Load() {
		r.Dropped.Add(1)
		return false
	}
	if ppm := r.lossPPM.Load(); ppm > 0 && rand.Uint32N(1_000_000) < ppm {
		r.Dropped.Add(1)
		return false
	}
	return true
}

func (r *UDPRelay) send(c *net.UDPConn, b []byte, to *net.UDPAddr) {
	r.Forwarded.Add(1)
	if d := time.Duration(r.delayNS.Load()); d > 0 {
		pkt := append([]byte(nil), b...)
		time.AfterFunc(d, func() { r.write(c, pkt, to) })
		return
	}
	r.write(c, b, to)
}

func (r *UDPRelay) write(c *net.UDPConn, b []byte, to *net.UDPAddr) {
	if to == nil {
		_, _ = c.Write(b)
	} else {
		_, _ = c.WriteToUDP(b, to)
	}
}

func (r *UDPRelay) serve() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := r.ln.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		up := r.session(from)
		if up == nil {
			return
		}
		if r.pass() {
			r.send(up, buf[:n], nil)
		}
	}
}

func (r *UDPRelay) session(from *net.UDPAddr) *net.UDPConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	if up := r.sessions[from.String()]; up != nil {
		return up
	}
	up, err := net.DialUDP("udp", nil, r.target)
	if err != nil {
		return nil
	}
	r.sessions[from.String()] = up
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
			if r.pass() {
				r.send(r.ln, buf[:n], from)
			}
		}
	})
	return up
}

// Close stops the relay and waits for its goroutines.
func (r *UDPRelay) Close() error {
	r.mu.Lock()
	r.closed = true
	for _, s := range r.sessions {
		s.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	return err
}
