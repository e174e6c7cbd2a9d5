//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/wandist/wandist/impair"
)

// preflight skips the test where the suite cannot run, saying why.
func preflight(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := Preflight(ctx, os.Getenv("CI") == "true"); err != nil {
		if errors.Is(err, ErrUnsupported) {
			t.Skipf("chaos suite skipped: %v", err)
		}
		t.Fatal(err)
	}
	RemoveLeftovers(ctx)
}

var topoSeq int

func newTestTopology(t *testing.T) *Topology {
	t.Helper()
	topoSeq++
	topo, err := NewTopology(context.Background(), fmt.Sprintf("%s%d-t%d", namePrefix, os.Getpid(), topoSeq))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(topo.Close)
	return topo
}

// echoIn serves TCP echo inside ns on addr.
func echoIn(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNS(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

// rtt dials addr from ns and times one small echo.
func rtt(t *testing.T, ns, addr string) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := nsDialer(ns)(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func TestTopologyRoutesAndAppliesFaults(t *testing.T) {
	preflight(t)
	ctx := context.Background()
	topo := newTestTopology(t)
	west := topo.NodeIP("west", 0).String() + ":9000"
	echoIn(t, topo.West, west)
	if _, err := rtt(t, topo.East, west); err != nil {
		t.Fatalf("no path from east to west: %v", err)
	}

	before, err := topo.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	via, err := topo.Apply(ctx, NetFault{Delay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d, err := rtt(t, topo.East, west)
	if err != nil {
		t.Fatal(err)
	}
	if d < 100*time.Millisecond {
		t.Fatalf("RTT %v with 50 ms each way (via %v)", d, via)
	}
	t.Logf("RTT with 50 ms each way: %v via %v", d, via)

	if _, err := topo.Apply(ctx, NetFault{Blackhole: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := rtt(t, topo.East, west); err == nil {
		t.Fatal("an echo crossed the blackhole")
	}
	after, err := topo.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	delta := after.Sub(before)
	if topo.HaveNFT && delta.NFT["drop_e2w"] == 0 {
		t.Fatalf("blackhole dropped nothing: %+v", delta.NFT)
	}
	if topo.fwd != nil && delta.Fwd.Delayed == 0 {
		t.Fatalf("the forwarder delayed nothing: %+v", delta.Fwd)
	}
	if err := topo.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rtt(t, topo.East, west); err != nil {
		t.Fatalf("no path after clearing the faults: %v", err)
	}

	// A rate cap: 64 KiB at 1 Mbit/s takes about half a second.
	if _, err := topo.Apply(ctx, NetFault{Dir: impair.Forward, RateBits: 1_000_000}); err != nil {
		t.Fatal(err)
	}
	c, err := nsDialer(topo.East)(ctx, "tcp", west)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go c.Write(make([]byte, 64<<10))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	cs, err := topo.Counters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tb := cs.TBF[wanWestIf]; tb.Bytes < 64<<10 || tb.Overlimits == 0 {
		t.Fatalf("tbf on %s: %+v, want the 64 KiB held to the rate", wanWestIf, tb)
	}
}
