package demo

import (
	"sync/atomic"

	"github.com/wandist/wandist/internal/udprelay"
)

// cutRelay is the demo's cuttable path: a UDP relay that forwards every
// datagram both ways until SetBlackhole(true), then drops them all silently
// until SetBlackhole(false): no ICMP, the QUIC link sees only silence.
type cutRelay struct {
	*udprelay.Relay // Addr and Close

	blackhole atomic.Bool
}

// newCutRelay listens on listen (e.g. "127.0.0.1:0") and forwards to target.
func newCutRelay(listen, target string) (*cutRelay, error) {
	r := &cutRelay{}
	var err error
	r.Relay, err = udprelay.New(listen, target, func(_ udprelay.Direction, b []byte, write func([]byte)) {
		if !r.blackhole.Load() {
			write(b)
		}
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// SetBlackhole cuts (true) or heals (false) the path in both directions.
func (r *cutRelay) SetBlackhole(on bool) { r.blackhole.Store(on) }
