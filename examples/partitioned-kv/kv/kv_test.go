package kv_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
	"github.com/wandist/wandist/examples/partitioned-kv/kv"
)

type testNode struct {
	cfg *configs.Config
	key ed25519.PrivateKey
	d   *daemon.Daemon
}

func (n *testNode) start(t *testing.T) {
	t.Helper()
	d, err := daemon.New(n.cfg, daemon.Options{Key: n.key, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.d = d
	t.Cleanup(func() { d.Close() })
}

// Three nodes: b-1 and b-2 in cluster "backend" hold the 64 partitions, half
// each; f-1 in cluster "front" uses the store by key.
func setup(t *testing.T) map[string]*testNode {
	dir := t.TempDir()
	ns := map[string]*testNode{}
	for _, n := range []struct{ cluster, node string }{{"backend", "b-1"}, {"backend", "b-2"}, {"front", "f-1"}} {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		c := configs.Default()
		c.Cluster, c.Node, c.Identity = n.cluster, n.node, "unused"
		c.Listen.QUIC = "127.0.0.1:0"
		c.Local.Socket = filepath.Join(dir, n.node+".sock")
		c.Link.KeepaliveInterval, c.Link.KeepaliveTimeout = 100*time.Millisecond, time.Second
		c.Link.ReconnectMax = 200 * time.Millisecond
		ns[n.node] = &testNode{cfg: c, key: k}
	}
	peer := func(o *testNode, addr, mode string) configs.Peer {
		return configs.Peer{Cluster: o.cfg.Cluster, Node: o.cfg.Node, Address: addr, Transport: "quic", Mode: mode,
			PublicKeys: []ed25519.PublicKey{o.key.Public().(ed25519.PublicKey)}}
	}
	b2, b1, f1 := ns["b-2"], ns["b-1"], ns["f-1"]
	b2.cfg.Peers = []configs.Peer{peer(b1, "", "accept"), peer(f1, "", "accept")}
	b2.start(t)
	b1.cfg.Peers = []configs.Peer{peer(b2, b2.d.ListenAddr("quic"), "connect"), peer(f1, "", "accept")}
	b1.start(t)
	f1.cfg.Peers = []configs.Peer{peer(b1, b1.d.ListenAddr("quic"), "connect"), peer(b2, b2.d.ListenAddr("quic"), "connect")}
	f1.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pair := range [][3]string{{"f-1", "backend", "b-1"}, {"f-1", "backend", "b-2"}, {"b-1", "backend", "b-2"}} {
		if err := ns[pair[0]].d.WaitLink(ctx, pair[1], pair[2], true); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

func connect(t *testing.T, n *testNode) *client.Client {
	t.Helper()
	c, err := client.Connect(context.Background(), client.Options{Socket: n.cfg.Local.Socket, ReconnectMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rangeOf(a, b int) []int {
	var out []int
	for p := a; p <= b; p++ {
		out = append(out, p)
	}
	return out
}

func TestPartitionedKV(t *testing.T) {
	ns := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serve := func(n *testNode, own []int) (stop func()) {
		sctx, scancel := context.WithCancel(ctx)
		done := make(chan struct{})
		c := connect(t, n)
		go func() {
			defer close(done)
			var s kv.Server
			_ = s.Serve(sctx, c, "kv", own)
		}()
		return func() { scancel(); c.Close(); <-done }
	}
	stop1 := serve(ns["b-1"], rangeOf(0, 31))
	defer func() { stop1() }()
	stop2 := serve(ns["b-2"], rangeOf(32, 63))
	defer func() { stop2() }()
	if err := ns["f-1"].d.WaitMembers(context.Background(), "kv", 2); err != nil {
		t.Fatal(err)
	}
	store := &kv.Client{C: connect(t, ns["f-1"]), Group: "kv"}
	call := func(f func(ctx context.Context) error) error {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		return f(cctx)
	}
	for i := 0; i < 200; i++ {
		k, v := fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i)
		if err := call(func(ctx context.Context) error { return store.Put(ctx, k, v) }); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("key-%d", i)
		var got string
		err := call(func(ctx context.Context) (err error) { got, err = store.Get(ctx, k); return err })
		if err != nil || got != fmt.Sprintf("value-%d", i) {
			t.Fatalf("get %s: %q %v", k, got, err)
		}
	}
	// Restart the backend of partitions 32-63: its keys are gone with it (the
	// store keeps memory only), its partitions have no owner while it is down
	// (requests fail fast), and it serves again once back.
	stop2()
	ctxw, cancelw := context.WithTimeout(ctx, 10*time.Second)
	defer cancelw()
	for len(ns["f-1"].d.Groups().Members("kv")) != 1 {
		select {
		case <-ns["f-1"].d.Groups().Changed():
		case <-ctxw.Done():
			t.Fatal("the stopped backend's member never left")
		}
	}
	sawNoOwner := false
	for i := 0; i < 200 && !sawNoOwner; i++ {
		err := call(func(ctx context.Context) error { _, err := store.Get(ctx, fmt.Sprintf("key-%d", i)); return err })
		sawNoOwner = errors.Is(err, client.ErrNoMembers)
	}
	if !sawNoOwner {
		t.Fatal("no key of the stopped backend failed with ErrNoMembers")
	}
	stop2 = serve(ns["b-2"], rangeOf(32, 63))
	if err := ns["f-1"].d.WaitMembers(context.Background(), "kv", 2); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		k := fmt.Sprintf("key-%d", i)
		if err := call(func(ctx context.Context) error { return store.Put(ctx, k, "again") }); err != nil {
			t.Fatalf("put after the restart %s: %v", k, err)
		}
	}
}
