package impair

import (
	"sync/atomic"
	"time"

	"github.com/wandist/wandist/internal/udprelay"
)

// UDPRelay forwards datagrams from clients on its listen address to one
// target, and the answers back. Each client address gets its own upstream
// socket, as NAT would. Forward is client to target.
type UDPRelay struct {
	udp    *udprelay.Relay
	faults pathFaults
	lines  [2]*delayLine // forward, backward

	Forwarded atomic.Uint64 // datagrams written (both directions, duplicates included)
	Dropped   atomic.Uint64 // datagrams dropped (blackhole, loss or rate queue)
}

// udpQueueLimit bounds the bytes a relay direction holds for later.
const udpQueueLimit = 16 << 20

// NewUDPRelay listens on listen (e.g. "127.0.0.1:0") and forwards to target.
func NewUDPRelay(listen, target string) (*UDPRelay, error) {
	r := &UDPRelay{faults: newPathFaults(),
		lines: [2]*delayLine{newDelayLine(udpQueueLimit), newDelayLine(udpQueueLimit)}}
	udp, err := udprelay.New(listen, target, func(dir udprelay.Direction, b []byte, write func([]byte)) {
		if dir == udprelay.Forward {
			r.relay(Forward, b, write)
		} else {
			r.relay(Backward, b, write)
		}
	})
	if err != nil {
		for _, l := range r.lines {
			l.close()
		}
		return nil, err
	}
	r.udp = udp
	return r, nil
}

// Addr is the relay's listen address: dial this instead of the target.
func (r *UDPRelay) Addr() string { return r.udp.Addr() }

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

// relay applies dir's faults to one datagram and writes it with write. It
// copies b, which the udprelay hook may not keep.
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

// Close stops the relay, waits for its goroutines and drops the datagrams
// still delayed. It is safe to call more than once.
func (r *UDPRelay) Close() error {
	err := r.udp.Close()
	for _, l := range r.lines {
		l.close()
	}
	return err
}
