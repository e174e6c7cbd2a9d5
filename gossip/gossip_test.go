package gossip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// A node joins via one seed, every node sees every node with its meta,
// itself included.
func TestJoinViaSeeds(t *testing.T) {
	n0 := start(t, "n0", nil)
	n1 := start(t, "n1", seeds(n0.Addr()))
	n2 := start(t, "n2", seeds(n0.Addr()))
	n3 := start(t, "n3", seeds(n1.Addr()))
	all := []string{"n0", "n1", "n2", "n3"}
	for _, n := range []*testNode{n0, n1, n2, n3} {
		waitUntil(t, 20*time.Second, "every node sees all four alive", func() bool { return sees(n.Gossip, StateAlive, all...) })
	}
	for _, m := range n2.Members() {
		want := Meta{Cluster: "eu", QUIC: "127.0.0.1:7000", TCP: "127.0.0.1:7001", Incarnation: 1}
		if m.Meta != want || m.Since.IsZero() || m.Addr == "" {
			t.Errorf("member %+v: want meta %+v, a since and an address", m, want)
		}
	}
}

// A node that closes is seen as left; one stopped hard (no leave) is
// declared dead by the failure detector.
func TestLeaveAndHardStop(t *testing.T) {
	n0 := start(t, "n0", nil)
	n1 := start(t, "n1", seeds(n0.Addr()))
	n2 := start(t, "n2", seeds(n0.Addr()))
	n3 := start(t, "n3", seeds(n0.Addr()))
	waitUntil(t, 20*time.Second, "joined", func() bool { return sees(n0.Gossip, StateAlive, "n1", "n2", "n3") })

	if err := n3.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n3.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "n3 seen as left", func() bool { return sees(n1.Gossip, StateLeft, "n3") })

	began := time.Now()
	n2.stop(false)
	waitUntil(t, 30*time.Second, "n2 declared dead", func() bool { return sees(n0.Gossip, StateDead, "n2") && sees(n1.Gossip, StateDead, "n2") })
	t.Logf("hard-stopped node declared dead after %v (probe 200ms, suspicion mult 3)", time.Since(began).Round(10*time.Millisecond))
}

// A node with another key cannot join, and its packets are refused.
func TestWrongKeyRefused(t *testing.T) {
	n0 := start(t, "n0", nil)
	n1 := start(t, "n1", seeds(n0.Addr()))
	waitUntil(t, 20*time.Second, "joined", func() bool { return sees(n0.Gossip, StateAlive, "n1") })
	other := []byte("another key of thirty-two bytes!")
	x := start(t, "x", func(c *Config) { c.SecretKey, c.Seeds = other, []string{n0.Addr(), n1.Addr()} })
	waitUntil(t, 20*time.Second, "wrong-key gossip refused", func() bool { return n0.refused.get(RefusedKey) > 0 })
	if _, ok := states(n0.Gossip)["x"]; ok {
		t.Errorf("n0 admitted the node with another key: %v", states(n0.Gossip))
	}
	if s := states(x.Gossip); len(s) != 1 {
		t.Errorf("the node with another key sees %v, want itself only", s)
	}
}

// A node whose meta names another cluster is refused, on both sides.
func TestOtherClusterRefused(t *testing.T) {
	n0 := start(t, "n0", nil)
	x := start(t, "x", func(c *Config) { c.Cluster, c.Seeds = "us", []string{n0.Addr()} })
	waitUntil(t, 20*time.Second, "other cluster refused", func() bool {
		return n0.refused.get(RefusedCluster) > 0 && x.refused.get(RefusedCluster) > 0
	})
	if s := states(n0.Gossip); len(s) != 1 {
		t.Errorf("n0 sees %v, want itself only", s)
	}
	if s := states(x.Gossip); len(s) != 1 {
		t.Errorf("x sees %v, want itself only", s)
	}
}

// A node claiming the name of a live node at another address is refused.
func TestNameConflictRefused(t *testing.T) {
	n0 := start(t, "n0", nil)
	n1 := start(t, "n1", seeds(n0.Addr()))
	waitUntil(t, 20*time.Second, "joined", func() bool { return sees(n0.Gossip, StateAlive, "n1") })
	start(t, "n1", seeds(n0.Addr()))
	waitUntil(t, 20*time.Second, "the second n1 refused", func() bool { return n0.refused.get(RefusedName) > 0 })
	for _, m := range n0.Members() {
		if m.Node == "n1" && m.Addr != n1.Addr() {
			t.Errorf("n0 took n1 at %s, want the first at %s", m.Addr, n1.Addr())
		}
	}
}

// New nodes past the join rate are refused.
func TestJoinFloodRefused(t *testing.T) {
	n0 := start(t, "n0", func(c *Config) { c.JoinRate, c.JoinBurst = 0.001, 2 })
	for i := range 5 {
		start(t, "f"+strconv.Itoa(i), seeds(n0.Addr()))
	}
	waitUntil(t, 20*time.Second, "joins past the rate refused", func() bool { return n0.refused.get(RefusedJoinRate) >= 3 })
	if s := states(n0.Gossip); len(s) > 3 {
		t.Errorf("n0 admitted %d nodes past a burst of 2: %v", len(s)-1, s)
	}
}

// A seed that is a DNS name is every address it resolves to.
func TestDNSSeedAllAddresses(t *testing.T) {
	a := start(t, "a", func(c *Config) { c.Bind = "127.0.0.11:0" })
	_, ps, _ := net.SplitHostPort(a.Addr())
	start(t, "b", func(c *Config) { c.Bind = "127.0.0.12:" + ps })
	start(t, "c", func(c *Config) { c.Bind = "127.0.0.13:" + ps })
	var asked atomic.Value
	d := start(t, "d", func(c *Config) {
		c.Seeds = []string{"pods.eu.svc:" + ps}
		c.Resolver = func(_ context.Context, host string) ([]netip.Addr, error) {
			asked.Store(host)
			return []netip.Addr{netip.MustParseAddr("127.0.0.11"), netip.MustParseAddr("127.0.0.12"), netip.MustParseAddr("::ffff:127.0.0.13")}, nil
		}
	})
	// a, b and c know no seed: only d's joining every address links them.
	waitUntil(t, 20*time.Second, "d joined every address", func() bool { return sees(d.Gossip, StateAlive, "a", "b", "c") })
	waitUntil(t, 20*time.Second, "a learned b and c", func() bool { return sees(a.Gossip, StateAlive, "b", "c", "d") })
	if h, _ := asked.Load().(string); h != "pods.eu.svc" {
		t.Errorf("resolver asked for %q", h)
	}
}

// A node started before its seed joins it once the seed is up (and once
// the name resolves), by re-resolving.
func TestReresolveJoinsLater(t *testing.T) {
	port := freePort(t, "127.0.0.21")
	var up atomic.Bool
	d := start(t, "d", func(c *Config) {
		c.Seeds = []string{"seed.eu.svc:" + port}
		c.Resolver = func(context.Context, string) ([]netip.Addr, error) {
			if !up.Load() {
				return nil, errors.New("no such host")
			}
			return []netip.Addr{netip.MustParseAddr("127.0.0.21")}, nil
		}
	})
	s := start(t, "s", func(c *Config) { c.Bind = "127.0.0.21:" + port })
	up.Store(true)
	waitUntil(t, 20*time.Second, "d joined the seed started later", func() bool { return sees(d.Gossip, StateAlive, "s") })
	waitUntil(t, 20*time.Second, "the seed sees d", func() bool { return sees(s.Gossip, StateAlive, "d") })
}

// freePort is a port free on ip for TCP and UDP at the time of the call.
func freePort(t *testing.T, ip string) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		_, ps, _ := net.SplitHostPort(l.Addr().String())
		u, err := net.ListenPacket("udp", ip+":"+ps)
		l.Close()
		if err == nil {
			u.Close()
			return ps
		}
	}
	t.Fatal("no free port")
	return ""
}

func TestStartRefusesBadConfig(t *testing.T) {
	base := Config{Cluster: "eu", Node: "n", Bind: "127.0.0.1:0", SecretKey: testKey}
	for name, edit := range map[string]func(*Config){
		"key":       func(c *Config) { c.SecretKey = c.SecretKey[:16] },
		"bind":      func(c *Config) { c.Bind = "nowhere" },
		"seed":      func(c *Config) { c.Seeds = []string{"h:99999"} },
		"profile":   func(c *Config) { c.Profile = "moon" },
		"cluster":   func(c *Config) { c.Cluster = "" },
		"advertise": func(c *Config) { c.Advertise = "x" },
	} {
		c := base
		edit(&c)
		if g, err := Start(context.Background(), c); !errors.Is(err, ErrConfig) {
			if g != nil {
				g.Close()
			}
			t.Errorf("%s: Start = %v, want ErrConfig", name, err)
		}
	}
}
