package transport

import (
	"net"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Initial packets (a client's first packets of a new connection) that one
// source address may send a QUIC listener per second, in bursts of
// initialBurst. A real client sends a handful per connection attempt.
const (
	initialRate    = 64
	initialBurst   = 128
	initialSources = 4096 // sources tracked; past it the table starts over
)

// initialFilter drops Initial packets from a source address over
// initialRate before quic-go sees them: a flood from a few addresses
// costs the listener no Retry, no refusal, no connection. It is owned by
// the goroutine that reads the socket (quic-go reads from one).
type initialFilter struct {
	sources map[netip.Addr]*rate.Limiter
	dropped func(remote net.Addr) // may be nil
}

func newInitialFilter(dropped func(net.Addr)) *initialFilter {
	return &initialFilter{sources: map[netip.Addr]*rate.Limiter{}, dropped: dropped}
}

// drop tells whether the packet p from remote is an Initial over its
// source's rate.
func (f *initialFilter) drop(p []byte, remote *net.UDPAddr, now time.Time) bool {
	// Long header (0x80), fixed bit (0x40), type Initial (0x30 clear), and
	// a version other than 0 (version negotiation).
	if len(p) < 5 || p[0]&0xf0 != 0xc0 || p[1]|p[2]|p[3]|p[4] == 0 || remote == nil {
		return false
	}
	ip := remote.AddrPort().Addr().Unmap()
	lim := f.sources[ip]
	if lim == nil {
		if len(f.sources) >= initialSources {
			clear(f.sources)
		}
		lim = rate.NewLimiter(initialRate, initialBurst)
		f.sources[ip] = lim
	}
	if lim.AllowN(now, 1) {
		return false
	}
	if f.dropped != nil {
		f.dropped(remote)
	}
	return true
}
