package daemon

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/configs"
)

// The idle-link costs docs/scale.md is built on. One hub daemon, in this
// process, accepts L links from L peer daemons of one remote cluster, which
// run in a child process (this test binary again, TestScalePeerHost), so
// the hub's heap and resident memory are this process's alone. Skipped
// unless asked for: WANDIST_SCALE=short gives a short form (L = 1, 8);
// WANDIST_SCALE=1 gives the full run (L = 1, 16, 64,
// 128, a minute of keepalive traffic). Traffic is counted only when the
// test runs in a network namespace of its own, where the loopback's
// counters see the hub and its peers and nothing else:
//
//	go test -c -o /tmp/daemon.test ./daemon
//	unshare -rn sh -c 'ip link set lo up && WANDIST_SCALE=1 /tmp/daemon.test -test.run "^TestScaleIdleLinks$" -test.v -test.timeout 30m'

const (
	scaleCluster = "west" // the peers' cluster
	envScale     = "WANDIST_SCALE"
	envChild     = "WANDIST_SCALE_CHILD" // transport,hub address,links
)

// scaleKey is a fixed key for role and i, so that the child and the hub
// agree on the peers' identities without sharing files.
func scaleKey(role string, i int) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("wandist-scale/" + role + "/" + strconv.Itoa(i)))
	return ed25519.NewKeyFromSeed(seed[:])
}

func scaleName(i int) string { return fmt.Sprintf("w%d", i) }

// scaleNode is newNode with the production link timing (keepalive 1 s,
// timeout 5 s) and a fixed key.
func scaleNode(t testing.TB, tr, cluster, name string, key ed25519.PrivateKey) *node {
	n := newNode(t, tr, cluster, name)
	def := configs.Default().Link
	n.cfg.Link.KeepaliveInterval, n.cfg.Link.KeepaliveTimeout = def.KeepaliveInterval, def.KeepaliveTimeout
	n.key, n.opts.Key = key, key
	return n
}

// startHub starts the hub with links peers configured, accept-only. The
// admission rates are raised so that every peer's first handshake is taken
// at once (they do not change what an idle link holds).
func startHub(t testing.TB, tr string, links int) *node {
	hub := scaleNode(t, tr, "hub", "hub-1", scaleKey("hub", 0))
	hub.cfg.Link.HandshakeRate, hub.cfg.Link.HandshakeBurst, hub.cfg.Link.HandshakeRateTotal = 10_000, 10_000, 10_000
	for i := range links {
		key := scaleKey("peer", i)
		p := configs.Peer{Cluster: scaleCluster, Node: scaleName(i), Transport: trName(tr), Mode: "accept",
			PublicKeys: []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}, Buffer: hub.cfg.Buffer}
		hub.cfg.Peers = append(hub.cfg.Peers, p)
	}
	hub.start()
	return hub
}

// TestScalePeerHost is the child: it runs the peers that link to the hub,
// until its standard input closes.
func TestScalePeerHost(t *testing.T) {
	spec := os.Getenv(envChild)
	if spec == "" {
		t.Skip("the child of TestScaleIdleLinks")
	}
	f := strings.Split(spec, ",")
	tr, hubAddr := f[0], f[1]
	links, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatal(err)
	}
	hubKey := scaleKey("hub", 0).Public().(ed25519.PublicKey)
	for i := range links {
		n := scaleNode(t, tr, scaleCluster, scaleName(i), scaleKey("peer", i))
		n.cfg.Peers = []configs.Peer{{Cluster: "hub", Node: "hub-1", Address: hubAddr, Transport: trName(tr),
			Mode: "connect", PublicKeys: []ed25519.PublicKey{hubKey}, Buffer: n.cfg.Buffer}}
		n.start()
	}
	fmt.Println("started")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// peerHost is a running child.
type peerHost struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   bytes.Buffer
}

func startPeerHost(t testing.TB, tr, hubAddr string, links int) *peerHost {
	t.Helper()
	h := &peerHost{cmd: exec.Command(os.Args[0], "-test.run=^TestScalePeerHost$", "-test.timeout=0")}
	h.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d", envChild, tr, hubAddr, links))
	h.cmd.Stdout, h.cmd.Stderr = &h.out, &h.out
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return h
}

// stop closes the child's input and waits for it to close its daemons.
func (h *peerHost) stop(t testing.TB) {
	t.Helper()
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Errorf("peer host: %v\n%s", err, h.out.String())
	}
}

// rssNow is this process's resident memory once the heap's free pages went
// back to the system.
func rssNow(t testing.TB) uint64 {
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// memAt is the hub's memory at one moment.
type memAt struct{ heap, rss uint64 }

func memNow(t testing.TB) memAt {
	h := heapNow()
	return memAt{h, rssNow(t)}
}

// scaleRun is what one transport and one L gave.
type scaleRun struct {
	tr                  string
	links               int
	base, conf, linked  memAt
	goroutinesPerLink   float64
	trafficWindow       time.Duration
	packets, bytes      uint64 // on the loopback, both ways, in the window
	udpDatagrams, tcpSg uint64
	upPackets, upBytes  uint64 // on the loopback, both ways, from the child's start to every link up
}

func (r scaleRun) perLink(f func(memAt) uint64) float64 {
	return (float64(f(r.linked)) - float64(f(r.conf))) / float64(r.links)
}

// TestScaleIdleLinks measures, per transport, the hub's heap and resident
// memory per idle link and per configured peer, and (in its own network
// namespace) the keepalive traffic of an idle link.
func TestScaleIdleLinks(t *testing.T) {
	switch os.Getenv(envScale) {
	case "":
		t.Skip("a measurement for docs/scale.md, not a check: WANDIST_SCALE=short runs its short form, WANDIST_SCALE=1 the full one")
	case "short":
		if testing.Short() {
			t.Skip("starts many daemons")
		}
	}
	ls, window, settle := []int{1, 8}, 3*time.Second, time.Second
	if os.Getenv(envScale) == "1" {
		ls, window, settle = []int{1, 16, 64, 128}, time.Minute, 3*time.Second
	}
	isolated := ownNetns(t)
	if !isolated {
		t.Log("not in a network namespace of its own: keepalive traffic not counted (see the comment above)")
	}
	for _, tr := range []string{"quic", "tcp"} {
		// A first link pays one-time costs (the transport's and TLS's code
		// and tables, the heap's first growth): not those of a link.
		scaleOnce(t, tr, 1, settle, false, 0)
		var runs []scaleRun
		for _, links := range ls {
			r := scaleOnce(t, tr, links, settle, isolated && links == ls[len(ls)-1], window)
			logScaleRun(t, r)
			runs = append(runs, r)
			if r.trafficWindow > 0 {
				pps := float64(r.packets) / float64(r.links) / r.trafficWindow.Seconds()
				if pps <= 0 || pps > 20 {
					t.Errorf("%s: %.2f packets per second per idle link, want some and at most 20", tr, pps)
				}
			}
		}
		// What one more linked peer costs, from the fewest links to the
		// most: the hub's first link also pays for its socket's receive
		// buffers (QUIC: 8 x 64 KiB, transport/gro_linux.go).
		a, b := runs[0], runs[len(runs)-1]
		dl := float64(b.links - a.links)
		heap := (kib(b.linked.heap, b.base.heap) - kib(a.linked.heap, a.base.heap)) / dl
		conf := (kib(b.conf.heap, b.base.heap) - kib(a.conf.heap, a.base.heap)) / dl
		rss := (kib(b.linked.rss, b.base.rss) - kib(a.linked.rss, a.base.rss)) / dl
		t.Logf("%s from L=%d to L=%d, per peer: %.1f KiB heap configured, %.1f KiB heap and %.1f KiB RSS configured and linked",
			tr, a.links, b.links, conf, heap, rss)
		if heap > 512 {
			t.Errorf("%s: %.0f KiB of heap per idle link, more than 512 KiB", tr, heap)
		}
	}
}

func scaleOnce(t *testing.T, tr string, links int, settle time.Duration, count bool, window time.Duration) scaleRun {
	r := scaleRun{tr: tr, links: links}
	r.base = memNow(t)
	hub := startHub(t, tr, links)
	defer hub.d.Close()
	time.Sleep(settle) // the quantity measured is what an idle daemon holds
	r.conf = memNow(t)
	g0 := runtime.NumGoroutine()
	var up0 counters
	if count {
		up0 = netCounters(t)
	}
	h := startPeerHost(t, tr, hub.addr(tr), links)
	defer h.stop(t)
	for i := range links {
		waitLinkFor(t, hub.d, scaleCluster, scaleName(i), time.Minute, h)
	}
	if count { // handshakes and the first snapshots, pings and acks
		up := netCounters(t)
		r.upPackets, r.upBytes = up.packets-up0.packets, up.bytes-up0.bytes
	}
	time.Sleep(settle)
	r.linked = memNow(t)
	r.goroutinesPerLink = float64(runtime.NumGoroutine()-g0) / float64(links)
	if count {
		a := netCounters(t)
		time.Sleep(window) // idle links: keepalives only
		b := netCounters(t)
		r.trafficWindow = window
		r.packets, r.bytes = b.packets-a.packets, b.bytes-a.bytes
		r.udpDatagrams, r.tcpSg = b.udpOut-a.udpOut, b.tcpOut-a.tcpOut
	}
	for i := range links { // every link stayed up: the figures are of idle links, not redials
		if n := hub.d.LinkUps(scaleCluster, scaleName(i)); n != 1 {
			t.Errorf("%s: link to %s came up %d times", tr, scaleName(i), n)
		}
	}
	return r
}

func waitLinkFor(t testing.TB, d *Daemon, cluster, node string, within time.Duration, h *peerHost) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := d.WaitLink(ctx, cluster, node, true); err != nil {
		t.Fatalf("link to %s/%s: %v\npeer host:\n%s", cluster, node, err, h.out.String())
	}
}

func logScaleRun(t testing.TB, r scaleRun) {
	heap := func(m memAt) uint64 { return m.heap }
	rss := func(m memAt) uint64 { return m.rss }
	t.Logf("%s L=%d: hub heap over none: %.0f KiB configured, %.0f KiB linked; RSS over none: %.0f KiB configured, %.0f KiB linked; "+
		"per idle link %.1f KiB heap, %.1f KiB RSS, %.1f goroutines",
		r.tr, r.links, kib(r.conf.heap, r.base.heap), kib(r.linked.heap, r.base.heap), kib(r.conf.rss, r.base.rss), kib(r.linked.rss, r.base.rss),
		r.perLink(heap)/1024, r.perLink(rss)/1024, r.goroutinesPerLink)
	if r.trafficWindow > 0 {
		s := r.trafficWindow.Seconds() * float64(r.links)
		t.Logf("%s L=%d keepalive over %v, per link per second, both ways: %.2f packets, %.0f bytes on the wire "+
			"(IP, %.0f counted by lo with its 14-byte header); UDP datagrams %.2f, TCP segments %.2f",
			r.tr, r.links, r.trafficWindow, float64(r.packets)/s, (float64(r.bytes)-14*float64(r.packets))/s,
			float64(r.bytes)/s, float64(r.udpDatagrams)/s, float64(r.tcpSg)/s)
		t.Logf("%s L=%d link set-up, per link, both ways, until the hub saw it up: %.1f packets, %.0f bytes (IP)",
			r.tr, r.links, float64(r.upPackets)/float64(r.links), (float64(r.upBytes)-14*float64(r.upPackets))/float64(r.links))
	}
}

func kib(a, b uint64) float64 { return (float64(a) - float64(b)) / 1024 }

// ownNetns reports whether the only network interface is the loopback.
func ownNetns(t testing.TB) bool {
	b, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n")[2:] {
		if name, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && name != "lo" {
			return false
		}
	}
	return true
}

// counters are the namespace's loopback and UDP/TCP output counters.
type counters struct{ packets, bytes, udpOut, tcpOut uint64 }

func netCounters(t testing.TB) counters {
	var c counters
	b, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if name, rest, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && name == "lo" {
			f := strings.Fields(rest) // rx: bytes packets ... (8), tx: bytes packets ...
			c.bytes, c.packets = atou(t, f[8]), atou(t, f[9])
		}
	}
	c.udpOut = snmp(t, "Udp:", "OutDatagrams")
	c.tcpOut = snmp(t, "Tcp:", "OutSegs")
	return c
}

// snmp reads one counter of /proc/net/snmp.
func snmp(t testing.TB, proto, field string) uint64 {
	f, err := os.Open("/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	for s := bufio.NewScanner(f); s.Scan(); {
		fs := strings.Fields(s.Text())
		if len(fs) == 0 || fs[0] != proto {
			continue
		}
		if names == nil {
			names = fs
			continue
		}
		for i, n := range names {
			if n == field {
				return atou(t, fs[i])
			}
		}
	}
	t.Fatalf("no %s %s in /proc/net/snmp", proto, field)
	return 0
}

func atou(t testing.TB, s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
