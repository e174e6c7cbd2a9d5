//go:build linux

package wan

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/wandist/wandist/bench/netutil"
	"github.com/wandist/wandist/chaos"
)

// Path is the emulated WAN: chaos's east and west namespaces joined
// through a WAN namespace, where the TUN forwarder delays, nftables drops
// and tbf caps the rate.
type Path struct {
	Topo *chaos.Topology
}

// NewPath checks the machine (root, namespaces, TUN, nftables) and builds
// the namespaces; the error wraps chaos.ErrUnsupported when the machine
// cannot.
func NewPath(ctx context.Context) (*Path, error) {
	if err := chaos.Preflight(ctx, false); err != nil {
		return nil, err
	}
	// Not chaos's "wdc-" prefix: its leftover sweep (run by the chaos
	// tests) would take a live WAN bench's namespaces for a dead run's.
	t, err := chaos.NewTopology(ctx, fmt.Sprintf("wdwan-%d", os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("wan path: %w", err)
	}
	return &Path{Topo: t}, nil
}

// Close removes the namespaces.
func (p *Path) Close() { p.Topo.Close() }

// Set applies a setting: RTT/2 each way, its loss both ways, a rate cap
// of rateBits each way (0: none), and a blackhole when cut.
func (p *Path) Set(ctx context.Context, s Setting, rateBits int64, cut bool) error {
	_, err := p.Topo.Apply(ctx, chaos.NetFault{Delay: RTT / 2, Loss: s.Loss, RateBits: rateBits, Blackhole: cut})
	if err != nil {
		return fmt.Errorf("wan path: setting %s at %d bit/s (cut %v): %w", s.Name, rateBits, cut, err)
	}
	return nil
}

// Site is where a cluster's servers run ("east" or "west").
func (p *Path) Site(cluster string) netutil.Site {
	ns := p.Topo.NS(cluster)
	return netutil.Site{NS: ns, Host: p.Topo.NodeIP(cluster, 0).String(), Dial: chaos.NSDialer(ns)}
}

// In runs fn with its sockets in cluster's namespace.
func (p *Path) In(cluster string, fn func() error) error {
	return chaos.InNS(p.Topo.NS(cluster), fn)
}

// listenTCP listens on west's address with the congestion control cc.
func (p *Path) listenTCP(cc string) (net.Listener, error) {
	var ln net.Listener
	err := p.In("west", func() error {
		var err error
		lc := net.ListenConfig{Control: ccControl(cc)}
		ln, err = lc.Listen(context.Background(), "tcp", net.JoinHostPort(p.Topo.NodeIP("west", 0).String(), "0"))
		return err
	})
	return ln, err
}

// dialTCP dials addr from east with the congestion control cc.
func (p *Path) dialTCP(ctx context.Context, addr, cc string) (net.Conn, error) {
	var c net.Conn
	err := p.In("east", func() error {
		var err error
		d := net.Dialer{Control: ccControl(cc)}
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// listenUDP opens a UDP socket on cluster's address.
func (p *Path) listenUDP(cluster string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := p.In(cluster, func() error {
		var err error
		c, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IP(p.Topo.NodeIP(cluster, 0).AsSlice())})
		return err
	})
	return c, err
}

// ErrUnsupported is wrapped when the machine cannot run the WAN bench.
var ErrUnsupported = chaos.ErrUnsupported
