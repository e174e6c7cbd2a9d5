package impair

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// UDPRelay forwards datagrams from clients on its listen address to one
// target, and the answers back. Each client address gets its own upstream
// socket, as NAT would. Forward is client to target.
type UDPRelay struct {
	ln     *net.UDPConn
	target *net.UDPAddr
	faults pathFaults
	lines  [2]*delayLine // forward, backward

	Forwarded atomic.Uint64 // datagrams written (both directions, duplicates included)
	Dropped   atomic.Uint64 // datagrams dropped (blackhole, loss or rate queue)

	mu       sync.Mutex
	sessions map[string]*net.UDPConn // client address -> upstream socket; guarded by mu
	closed   bool                    // guarded by mu
	wg       sync.WaitGroup
}

// udpQueueLimit bounds the bytes a relay direction holds for later.
const udpQueueLimit = 16 << 20

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
	r := &UDPRelay{ln: ln, target: ta, sessions: map[string]*net.UDPConn{}, faults: newPathFaults(),
		lines: [2]*delayLine{newDelayLine(udpQueueLimit), newDelayLine(udpQueueLimit)}}
	r.wg.Go(r.serve)
	return r, nil
}

// Addr is the relay's listen address: dial this instead of the target.
func (r *UDPRelay) Addr() string { return r.ln.LocalAddr().String() }

// SetFaults sets the faults of dir (Forward, Backward or Both).
func (r *UDPRelay) SetFaults(dir Direction, f Faults) error { return r.faults.set(dir, f) }

// Stats returns what dir did so far (Both: the sum).
func (r *UDPRelay) Stats(dir Direction) Stats { return r.faults.stats(dir) }

// SetBlackhole cuts (true) or heals (false) the path in both directions,
// keeping the other faults.
func (r *UDPRelay) SetBlackhole(on bool) { r.faults.update(Both, func(f *Faults) { f.Blackhole = on }) }

// SetLoss drops each datagram with probability p (0..1), both ways.
func (r *UDPRelay) SetLoss(p float64) { r.faults.update(Both, func(f *Faults) { f.Loss = p }) }

// SetDelay delays every datagram by d (one way), both ways.
func (r *UDPRelay) SetDelay(d time.Duration) { r.faults.update(Both, func(f *Faults) { f.Delay = d }) }

// relay applies dir's faults to one datagram and writes it with write.
func (r *UDPRelay) relay(dir Direction, b []byte, write func([]byte)) {
	v := r.faults.shaper(dir).admit(time.Now(), len(b), false, len(b) > 0)
	if v.copies == 0 {
		r.Dropped.Add(1)
		return
	}
	pkt := append([]byte(nil), b...)
	if v.corrupt {
		corrupt(pkt, 0)
	}
	line := r.lines[0]
	if dir == Backward {
		line = r.lines[1]
	}
	sh := r.faults.shaper(dir)
	out := func(p []byte) {
		write(p)
		r.Forwarded.Add(1)
		sh.c.forwarded.Add(1)
	}
	for i := range v.copies {
		p := pkt
		if i > 0 {
			p = append([]byte(nil), pkt...)
		}
		if !line.push(v.at, p, out, false) {
			r.Dropped.Add(1)
			sh.c.queueDrops.Add(1)
		}
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
		r.relay(Forward, buf[:n], func(p []byte) { _, _ = up.Write(p) })
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
			r.relay(Backward, buf[:n], func(p []byte) { _, _ = r.ln.WriteToUDP(p, from) })
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
	for _, l := range r.lines {
		l.close()
	}
	return err
}
