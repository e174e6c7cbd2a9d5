package gossip

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testKey = bytes.Repeat([]byte{7}, KeySize)

// fast are timings for tests on loopback, slow enough for -race on a
// loaded machine not to suspect live nodes.
func fast(mc *memberlist.Config) {
	mc.ProbeInterval = 200 * time.Millisecond
	mc.ProbeTimeout = 100 * time.Millisecond
	mc.GossipInterval = 50 * time.Millisecond
	mc.PushPullInterval = 2 * time.Second
	mc.TCPTimeout = 2 * time.Second
	mc.SuspicionMult = 3
	mc.GossipToTheDeadTime = 5 * time.Second
}

// refusals counts OnRefused calls by reason.
type refusals struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[reason]++
}

func (r *refusals) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// testNode is a started node and its refusals.
type testNode struct {
	*Gossip
	refused *refusals
}

// start starts a node named name of cluster "eu" on 127.0.0.1:0 (unless
// edit changes cfg), closed at the end of the test.
func start(t *testing.T, name string, edit func(*Config)) *testNode {
	t.Helper()
	r := &refusals{}
	cfg := Config{
		Cluster: "eu", Node: name, Bind: "127.0.0.1:0", SecretKey: testKey,
		Meta:              Meta{QUIC: "127.0.0.1:7000", TCP: "127.0.0.1:7001", Incarnation: 1},
		Logger:            slog.New(slog.DiscardHandler),
		ReresolveInterval: 300 * time.Millisecond,
		OnRefused:         r.add,
		Tune:              fast,
	}
	if edit != nil {
		edit(&cfg)
	}
	g, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return &testNode{Gossip: g, refused: r}
}

// seeds is an edit that sets the seeds.
func seeds(s ...string) func(*Config) { return func(c *Config) { c.Seeds = s } }

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// states is name -> state of g's members.
func states(g *Gossip) map[string]State {
	out := map[string]State{}
	for _, m := range g.Members() {
		out[m.Node] = m.State
	}
	return out
}

// sees says whether g sees each of names in state st.
func sees(g *Gossip, st State, names ...string) bool {
	s := states(g)
	for _, n := range names {
		if s[n] != st {
			return false
		}
	}
	return true
}
