package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// transports every link test runs over.
var testTransports = []string{"quic", "tcp", "mem"}

var memSeq atomic.Int64

// node is one daemon under test.
type node struct {
	t    testing.TB
	cfg  *configs.Config
	key  ed25519.PrivateKey
	d    *Daemon
	opts Options
	gate *pathGate // between the daemon and its transports
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WANDIST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newNode makes (but does not start) a daemon for cluster/name over the
// named transport, listening on a fresh address.
func newNode(t testing.TB, tr, cluster, name string) *node {
	t.Helper()
	cfg := configs.Default()
	cfg.Cluster, cfg.Node = cluster, name
	cfg.Identity = "unused.key"
	cfg.Local.Socket = filepath.Join(t.TempDir(), name+".sock")
	cfg.Link.KeepaliveInterval = 100 * time.Millisecond
	cfg.Link.KeepaliveTimeout = 1 * time.Second
	cfg.Link.HandshakeTimeout = 2 * time.Second
	cfg.Link.ReconnectMin = 20 * time.Millisecond
	cfg.Link.ReconnectMax = 200 * time.Millisecond
	opts := Options{Key: newKey(t), Logger: testLogger(t).With("d", name)}
	switch tr {
	case "quic":
		cfg.Listen.QUIC = "127.0.0.1:0"
	case "tcp":
		cfg.Listen.TCP = "127.0.0.1:0"
	case "mem":
		cfg.Listen.QUIC = fmt.Sprintf("mem-%s-%d:1", name, memSeq.Add(1))
		mem := transport.NewMem(transport.Options{HandshakeTimeout: cfg.Link.HandshakeTimeout})
		opts.Transports = map[string]transport.Transport{"quic": mem, "tcp": mem}
	}
	return &node{t: t, cfg: cfg, key: opts.Key, opts: opts, gate: newPathGate()}
}

func (n *node) pub() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }

func (n *node) addr(tr string) string {
	switch tr {
	case "tcp":
		return n.d.ListenAddr("tcp")
	case "mem":
		return n.cfg.Listen.QUIC
	}
	return n.d.ListenAddr("quic")
}

func trName(tr string) string {
	if tr == "tcp" {
		return "tcp"
	}
	return "quic"
}

// peerOf returns a peer entry for other, dialling addr (accept-only if "").
func peerOf(other *node, tr, addr, mode string) configs.Peer {
	p := configs.Peer{Cluster: other.cfg.Cluster, Node: other.cfg.Node, Address: addr, Transport: trName(tr),
		Mode: mode, PublicKeys: []ed25519.PublicKey{other.pub()}}
	p.Buffer = other.cfg.Buffer
	return p
}

func (n *node) start() {
	n.t.Helper()
	d, err := New(n.cfg, n.opts)
	if err != nil {
		n.t.Fatal(err)
	}
	n.gate.install(d)
	if err := d.Start(context.Background()); err != nil {
		n.t.Fatal(err)
	}
	n.d = d
	n.t.Cleanup(func() { d.Close() })
}

// pair starts east (accepting) and west (dialling east) over tr.
func pair(t testing.TB, tr string) (east, west *node) {
	t.Helper()
	return pairWith(t, tr, nil)
}

// pairWith is pair, with setup run on both nodes before they start.
func pairWith(t testing.TB, tr string, setup func(east, west *node)) (east, west *node) {
	t.Helper()
	east = newNode(t, tr, "east", "east-1")
	west = newNode(t, tr, "west", "west-1")
	if setup != nil {
		setup(east, west)
	}
	east.cfg.Peers = []configs.Peer{peerOf(west, tr, "", "accept")}
	east.start()
	west.cfg.Peers = []configs.Peer{peerOf(east, tr, east.addr(tr), "connect")}
	west.start()
	waitLink(t, west.d, "east", "east-1")
	waitLink(t, east.d, "west", "west-1")
	return east, west
}

func waitLink(t testing.TB, d *Daemon, cluster, node string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitLink(ctx, cluster, node, true); err != nil {
		t.Fatal(err)
	}
}

func connect(t testing.TB, n *node) *client.Client {
	t.Helper()
	c, err := client.Connect(context.Background(), client.Options{Socket: n.cfg.Local.Socket, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// subscribe opens a mailbox on n, joins group, and waits until waitOn sees it.
func subscribe(t testing.TB, n *node, group string, waitOn ...*node) *client.Mailbox {
	t.Helper()
	c := connect(t, n)
	mb, err := c.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Join(ctxT(t, 5*time.Second), group); err != nil {
		t.Fatal(err)
	}
	for _, o := range waitOn {
		if err := o.d.WaitMembers(ctxT(t, 10*time.Second), group, 1); err != nil {
			t.Fatal(err)
		}
	}
	return mb
}

// receiveSeq reads n messages "0".."n-1" and checks exactly-once, in order.
func receiveSeq(t testing.TB, mb *client.Mailbox, n int, timeout time.Duration) {
	t.Helper()
	receiveSeqFrom(t, mb, 0, n, timeout)
}

// receiveSeqFrom is receiveSeq for the payloads from, ..., n-1.
func receiveSeqFrom(t testing.TB, mb *client.Mailbox, from, n int, timeout time.Duration) {
	t.Helper()
	ctx := ctxT(t, timeout)
	for i := from; i < n; i++ {
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", i, n, err)
		}
		got, err := strconv.Atoi(string(m.Payload))
		if err != nil || got != i {
			t.Fatalf("message %d: got payload %q (want %d): lost, duplicated or reordered", i, m.Payload, i)
		}
	}
	// Nothing more may arrive (no duplicates after the last one).
	ctx2, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if m, err := mb.Receive(ctx2); err == nil {
		t.Fatalf("unexpected extra message %q after all %d", m.Payload, n)
	}
}

// bufferMessage is buffer.Message, for tests that queue by hand.
type bufferMessage = buffer.Message

// sendAsync is SendAsync for a test that sends more than the SDK's write
// buffer holds: on ErrBusy (the daemon has not read what waits yet) it
// flushes, then sends again. Without -race the SDK can outrun the daemon.
func sendAsync(t *testing.T, c *client.Client, to client.Target, payload []byte, opts ...client.SendOption) {
	t.Helper()
	err := c.SendAsync(to, payload, opts...)
	if errors.Is(err, client.ErrBusy) {
		if err = c.Flush(ctxT(t, 10*time.Second)); err == nil {
			err = c.SendAsync(to, payload, opts...)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// block cuts (on) or heals the path from n to cluster/node, as a partition
// would: the link breaks without GoAway, and none is made until it heals.
func (n *node) block(cluster, node string, on bool) {
	n.gate.setBlocked(auth.PeerID{Cluster: cluster, Node: node}, on)
}
