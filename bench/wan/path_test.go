//go:build linux

package wan

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPathSmoke builds the namespaces and runs a short bulk flow of the
// raw TCP reference over the capped, lossy, delayed path: every message
// arrives once, in order, slower than the cap. Needs root.
func TestPathSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("namespaces: not in -short")
	}
	ctx := context.Background()
	p, err := NewPath(ctx)
	if errors.Is(err, ErrUnsupported) {
		t.Skip("skipped: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const rate = 20e6
	if err := p.Set(ctx, Settings[1], rate, false); err != nil {
		t.Fatal(err)
	}
	s, err := newSystem("raw-tcp-cubic", p, binaries{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c, err := s.OpenRPC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Call(ctx, make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < RTT {
		t.Errorf("a call took %v, less than the path's RTT %v", rtt, RTT)
	}
	c.Close()
	r, err := Bulk(ctx, s, BulkOptions{Size: 16 << 10, Duration: 1500 * time.Millisecond, Warm: 500 * time.Millisecond, Window: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Counts.Clean() || r.Counts.OutOfOrder != 0 || r.Sent == 0 {
		t.Errorf("sent %d, counts %+v: want all delivered once, in order", r.Sent, r.Counts)
	}
	if r.Goodput <= 0 || r.Goodput > rate {
		t.Errorf("goodput %.1f Mbit/s through a %.0f Mbit/s cap", r.Goodput/1e6, rate/1e6)
	}
}
