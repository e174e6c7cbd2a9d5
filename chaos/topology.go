//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/wandist/wandist/impair"
)

// Addresses: 10.213.1.0/24 joins east and the WAN namespace, 10.213.2.0/24
// west and the WAN. They exist only inside the namespaces the suite
// creates and are never routed from the root namespace.
var (
	eastNet = netip.MustParsePrefix("10.213.1.0/24")
	eastGW  = netip.MustParseAddr("10.213.1.1")
	westGW  = netip.MustParseAddr("10.213.2.1")
)

// Interface names, inside the namespaces.
const (
	eastIf    = "e0"     // in east, towards the WAN
	westIf    = "w0"     // in west, towards the WAN
	wanEastIf = "we"     // in the WAN, towards east (its egress carries west->east)
	wanWestIf = "ww"     // in the WAN, towards west (its egress carries east->west)
	tunIf     = "wdctun" // in the WAN: the packet forwarder's TUN device
	tunTable  = "100"    // routing table that sends the WAN's transit traffic into the TUN
)

// Topology is three network namespaces: east and west (one cluster each)
// joined by veth pairs to a WAN namespace that routes between them and
// where faults are applied.
type Topology struct {
	Prefix         string // "wdc-<pid>-<n>", the start of every name
	East, West     string // cluster namespaces
	WAN            string // the router between them
	Netem          bool   // the kernel has netem: it applies the packet faults
	HaveNFT        bool   // nftables is available: loss, partitions, blackholes
	eastIP, westIP netip.Addr

	fwd        *impair.PacketForwarder // nil with netem
	unregister func()
}

// ErrUnsupported is wrapped when the machine cannot run the suite (not
// root, no namespaces, no TUN device, no nftables); tests skip on it.
var ErrUnsupported = errors.New("chaos: unsupported here")

// Preflight checks that the suite can run: root, network namespaces, a
// TUN device or netem, nftables (installed from Debian's packages when
// installMissing is set and it is missing). The error wraps ErrUnsupported.
func Preflight(ctx context.Context, installMissing bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (network namespaces, TUN, nftables); running as uid %d", ErrUnsupported, os.Geteuid())
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := lookPath(tool); err != nil {
			return fmt.Errorf("%w: %s (iproute2) not found", ErrUnsupported, tool)
		}
	}
	if _, err := lookPath("nft"); err != nil {
		if !installMissing {
			return fmt.Errorf("%w: nft not found (apt-get install nftables)", ErrUnsupported)
		}
		if _, err := run(ctx, "apt-get", "update", "-qq"); err != nil {
			return fmt.Errorf("%w: installing nftables: %v", ErrUnsupported, err)
		}
		if _, err := run(ctx, "apt-get", "install", "-y", "-qq", "nftables"); err != nil {
			return fmt.Errorf("%w: installing nftables: %v", ErrUnsupported, err)
		}
	}
	probe := fmt.Sprintf("%s%d-probe", namePrefix, os.Getpid())
	if _, err := run(ctx, "ip", "netns", "add", probe); err != nil {
		return fmt.Errorf("%w: cannot create a network namespace: %v", ErrUnsupported, err)
	}
	defer run(context.Background(), "ip", "netns", "del", probe)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		if _, nerr := run(ctx, "tc", "-n", probe, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"); nerr != nil {
			return fmt.Errorf("%w: neither /dev/net/tun nor netem", ErrUnsupported)
		}
	}
	return nil
}

// NewTopology creates the namespaces, links, addresses and routes, and the
// fault paths (netem if the kernel has it, else the TUN forwarder; nftables
// tables). Close removes all of it; an interrupt (SIGINT, SIGTERM) too.
func NewTopology(ctx context.Context, prefix string) (t *Topology, err error) {
	t = &Topology{Prefix: prefix, East: prefix + "-east", West: prefix + "-west", WAN: prefix + "-wan",
		eastIP: netip.MustParseAddr("10.213.1.2"), westIP: netip.MustParseAddr("10.213.2.2")}
	t.unregister = onInterrupt(func() { t.remove(context.Background()) })
	defer func() {
		if err != nil {
			t.Close()
			t = nil
		}
	}()
	steps := [][]string{
		{"netns", "add", t.East}, {"netns", "add", t.West}, {"netns", "add", t.WAN},
		{"-n", t.WAN, "link", "add", wanEastIf, "type", "veth", "peer", "name", eastIf, "netns", t.East},
		{"-n", t.WAN, "link", "add", wanWestIf, "type", "veth", "peer", "name", westIf, "netns", t.West},
		{"-n", t.WAN, "addr", "add", eastGW.String() + "/24", "dev", wanEastIf},
		{"-n", t.WAN, "addr", "add", westGW.String() + "/24", "dev", wanWestIf},
		{"-n", t.East, "addr", "add", t.eastIP.String() + "/24", "dev", eastIf},
		{"-n", t.West, "addr", "add", t.westIP.String() + "/24", "dev", westIf},
	}
	for _, ns := range []string{t.East, t.West, t.WAN} {
		steps = append(steps, []string{"-n", ns, "link", "set", "lo", "up"})
	}
	steps = append(steps,
		[]string{"-n", t.WAN, "link", "set", wanEastIf, "up"}, []string{"-n", t.WAN, "link", "set", wanWestIf, "up"},
		[]string{"-n", t.East, "link", "set", eastIf, "up"}, []string{"-n", t.West, "link", "set", westIf, "up"},
		[]string{"-n", t.East, "route", "add", "default", "via", eastGW.String()},
		[]string{"-n", t.West, "route", "add", "default", "via", westGW.String()},
	)
	for _, s := range steps {
		if _, err := run(ctx, "ip", s...); err != nil {
			return t, err
		}
	}
	sysctls := map[string][]string{
		t.WAN:  {"net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf.all.send_redirects=0", "net.ipv6.conf.all.disable_ipv6=1"},
		t.East: {"net.ipv6.conf.all.disable_ipv6=1"},
		t.West: {"net.ipv6.conf.all.disable_ipv6=1"},
	}
	for ns, kvs := range sysctls {
		for _, kv := range kvs {
			if _, err := runIn(ctx, ns, "sysctl", "-qw", kv); err != nil {
				return t, err
			}
		}
	}
	if _, err := run(ctx, "tc", "-n", t.WAN, "qdisc", "add", "dev", wanWestIf, "root", "netem", "delay", "0ms"); err == nil {
		t.Netem = true
		if _, err := run(ctx, "tc", "-n", t.WAN, "qdisc", "del", "dev", wanWestIf, "root"); err != nil {
			return t, err
		}
	} else if err := t.startForwarder(ctx); err != nil {
		return t, err
	}
	if _, err := lookPath("nft"); err == nil {
		t.HaveNFT = true
		if err := runStdin(ctx, nftBase, "ip", "netns", "exec", t.WAN, "nft", "-f", "-"); err != nil {
			return t, err
		}
	}
	return t, nil
}

// startForwarder puts the TUN packet forwarder in the WAN's transit path:
// what arrives from east or west is routed into the TUN device, impaired,
// written back, and routed on by the main table.
func (t *Topology) startForwarder(ctx context.Context) error {
	var dev *os.File
	if err := inNS(t.WAN, func() error {
		var err error
		dev, err = impair.OpenTUN(tunIf)
		return err
	}); err != nil {
		return err
	}
	t.fwd = impair.NewPacketForwarder(dev, eastNet)
	for _, s := range [][]string{
		{"-n", t.WAN, "link", "set", tunIf, "up"},
		{"-n", t.WAN, "rule", "add", "iif", wanEastIf, "lookup", tunTable, "pref", "100"},
		{"-n", t.WAN, "rule", "add", "iif", wanWestIf, "lookup", tunTable, "pref", "101"},
		{"-n", t.WAN, "route", "add", "default", "dev", tunIf, "table", tunTable},
	} {
		if _, err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	_, err := runIn(ctx, t.WAN, "sysctl", "-qw", "net.ipv4.conf."+tunIf+".rp_filter=0")
	return err
}

// NodeIP returns the address of the i-th node (from 0) of a cluster.
func (t *Topology) NodeIP(cluster string, i int) netip.Addr {
	base := t.eastIP
	if cluster == "west" {
		base = t.westIP
	}
	a := base.As4()
	a[3] += byte(i)
	return netip.AddrFrom4(a)
}

// NS returns the namespace of a cluster ("east" or "west").
func (t *Topology) NS(cluster string) string {
	if cluster == "west" {
		return t.West
	}
	return t.East
}

// Path says how each kind of fault is applied on this machine.
func (t *Topology) Path() string {
	var parts []string
	if t.Netem {
		parts = append(parts, "netem (delay, jitter, loss, reordering, duplication, corruption)")
	} else {
		parts = append(parts, "TUN packet forwarder in the WAN namespace (delay, jitter, reordering, duplication, corruption; impair.PacketForwarder)")
	}
	if t.HaveNFT {
		parts = append(parts, "nftables in the WAN namespace (loss, partitions, blackholes)")
	}
	parts = append(parts, "tbf on the WAN veths (rate)")
	return strings.Join(parts, "; ")
}

// Close removes everything the topology created.
func (t *Topology) Close() {
	t.remove(context.Background())
	if t.unregister != nil {
		t.unregister()
	}
}

func (t *Topology) remove(ctx context.Context) {
	if t.fwd != nil {
		t.fwd.Close()
		t.fwd = nil
	}
	for _, ns := range []string{t.East, t.West, t.WAN} {
		killNamespace(ctx, ns)
		_, _ = run(ctx, "ip", "netns", "del", ns)
	}
}
