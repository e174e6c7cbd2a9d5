package transport

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// Refusals of inbound connections before authentication. Each reaches
// Options.OnHandshakeError wrapped in a handshake error.
var (
	// ErrTooManyHandshakes refuses a connection while the listener already
	// runs Options.MaxHandshakes handshakes (those of trusted sources may
	// use Options.ReservedHandshakes more).
	ErrTooManyHandshakes = errors.New("transport: too many handshakes in progress")
	// ErrTooManyFromSource refuses a connection while its source address
	// already runs Options.MaxHandshakesPerSource handshakes.
	ErrTooManyFromSource = errors.New("transport: too many handshakes in progress from this source address")
	// ErrHelloTimeout ends a TCP handshake whose client did not send the
	// first byte of its ClientHello within half of Options.HelloTimeout, or
	// the whole ClientHello within it.
	ErrHelloTimeout = errors.New("transport: no ClientHello in time")
)

// gate admits a listener's inbound connections before the listener keeps
// any state for them: Options.Admit first (the caller's rate limits), then
// a handshake slot. A slot is held until the handshake ends, either way.
//
// Bounds: at most MaxHandshakes slots for untrusted sources, and
// ReservedHandshakes more that only trusted sources may take (so that a
// flood from many addresses cannot keep a known peer out); at most
// MaxHandshakesPerSource from one IP address (so that one address cannot
// take them all). Addresses that are not IP (mem) share no per-source cap.
type gate struct {
	o Options

	mu       sync.Mutex
	total    int                // guarded by mu: slots held
	bySource map[netip.Addr]int // guarded by mu: slots held per source IP; no zero entries
}

func newGate(o Options) *gate {
	return &gate{o: o, bySource: map[netip.Addr]int{}}
}

// enter admits a connection from remote and takes a slot, or says why not.
// The returned release gives the slot back; it is safe to call twice.
// proven is false for a QUIC source address not validated by a Retry.
func (g *gate) enter(remote net.Addr, proven bool) (release func(), err error) {
	trusted := false
	if g.o.Admit != nil {
		if trusted, err = g.o.Admit(remote, proven); err != nil {
			return nil, err
		}
	}
	ip, hasIP := sourceIP(remote)
	g.mu.Lock()
	defer g.mu.Unlock()
	limit := g.o.MaxHandshakes
	if trusted {
		limit += g.o.ReservedHandshakes
	}
	if g.total >= limit {
		return nil, ErrTooManyHandshakes
	}
	if hasIP {
		if g.bySource[ip] >= g.o.MaxHandshakesPerSource {
			return nil, ErrTooManyFromSource
		}
		g.bySource[ip]++
	}
	g.total++
	var once sync.Once
	return func() { once.Do(func() { g.leave(ip, hasIP) }) }, nil
}

func (g *gate) leave(ip netip.Addr, hasIP bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if hasIP {
		if g.bySource[ip]--; g.bySource[ip] <= 0 {
			delete(g.bySource, ip)
		}
	}
}

// inProgress is the number of handshakes holding a slot.
func (g *gate) inProgress() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// sourceIP is the IP address of a TCP or UDP endpoint.
func sourceIP(a net.Addr) (netip.Addr, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
