package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// fakeStream is a pipes stream that records what is written, and holds
// writes while stalled.
type fakeStream struct {
	transport.Stream // nil: only the methods below are used

	mu   sync.Mutex // guards buf, flow
	buf  bytes.Buffer
	flow chan struct{} // closed: writes go through

	deadOnce sync.Once
	dead     chan struct{}
}

func newFakeStream(stalled bool) *fakeStream {
	s := &fakeStream{flow: make(chan struct{}), dead: make(chan struct{})}
	if !stalled {
		close(s.flow)
	}
	return s
}

func (s *fakeStream) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.flow:
	default:
		close(s.flow)
	}
}

func (s *fakeStream) Write(b []byte) (int, error) {
	s.mu.Lock()
	flow := s.flow
	s.mu.Unlock()
	select {
	case <-flow:
	case <-s.dead:
		return 0, os.ErrDeadlineExceeded
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

func (s *fakeStream) SetDeadline(t time.Time) error {
	if !t.IsZero() && time.Until(t) <= 0 {
		s.deadOnce.Do(func() { close(s.dead) })
	}
	return nil
}

func (s *fakeStream) Close() error { return s.SetDeadline(time.Unix(1, 0)) }

// frames decodes what was written after the StreamInit.
func (s *fakeStream) frames(t *testing.T) []wire.Message {
	t.Helper()
	s.mu.Lock()
	b := bytes.Clone(s.buf.Bytes())
	s.mu.Unlock()
	r := wire.NewReader(bytes.NewReader(b), wire.DefaultMaxBody)
	var out []wire.Message
	for {
		m, err := r.ReadMessage()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(*wire.StreamInit); !ok {
			out = append(out, m)
		}
	}
}

// fakeConn hands out one stream.
type fakeConn struct {
	transport.Conn // nil: only the methods below are used
	s              *fakeStream
}

func (c *fakeConn) OpenStream(context.Context) (transport.Stream, error) { return c.s, nil }
func (c *fakeConn) Transport() string                                    { return "mem" }
func (c *fakeConn) Close() error                                         { return nil }

// fakeLink is a link of d to peer whose pipes stream is s: only its pipes
// work.
func fakeLink(t *testing.T, d *Daemon, id auth.PeerID, dialer bool, s *fakeStream) *link {
	l := &link{p: &peer{d: d, id: id}, conn: &fakeConn{s: s}, ctl: newFakeStream(false), dialer: dialer, maxFrame: 1 << 20}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	l.pm = newPipeMux(l)
	t.Cleanup(func() {
		l.fail(io.EOF)
		s.Close()
		l.pm.quit()
		l.wg.Wait()
		l.pm.end()
	})
	return l
}

// loneDaemon is a started daemon without peers, with its pipe limits set
// by lim.
func loneDaemon(t *testing.T, lim func(*pipeLimits)) *Daemon {
	n := newNode(t, "mem", "west", "west-1")
	n.start()
	if lim != nil {
		lim(&n.d.relay.lim)
	}
	return n.d
}

func endpoint(t *testing.T, l *link) *pipeConn {
	t.Helper()
	c, err := l.newEndpoint(func(id uint64) *pipeConn { return newPipeConn(l.pm, id, nil, nil) }, auth.PeerID{Cluster: "west", Node: "west-2"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPipeConnDeadlines(t *testing.T) {
	d := loneDaemon(t, func(lim *pipeLimits) { lim.queueBytes, lim.chunk = 100, 64 })
	s := newFakeStream(true)
	l := fakeLink(t, d, auth.PeerID{Cluster: "east", Node: "east-1"}, true, s)
	c := endpoint(t, l)
	defer c.Close()

	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var buf [8]byte
	var ne net.Error
	if _, err := c.Read(buf[:]); !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	got := make(chan error, 1)
	go func() { _, err := c.Read(buf[:]); got <- err }()
	_ = c.SetReadDeadline(time.Unix(1, 0)) // moved into the past while Read waits
	if err := <-got; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read whose deadline moved into the past: %v", err)
	}
	_ = c.SetDeadline(time.Time{})
	c.data([]byte("hi"))
	if n, err := c.Read(buf[:]); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("read %q, %v; want hi", buf[:n], err)
	}

	// The writer holds the first frame in the stalled stream; the queue
	// fills past its bound and Write waits until its deadline.
	_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := c.Write(make([]byte, 1000))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n >= 1000 {
		t.Fatalf("write into a full queue: %d bytes, %v; want part, then a timeout", n, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := c.Write(make([]byte, 1000)); done <- err }()
	s.release()
	if err := <-done; err != nil {
		t.Fatalf("write once the stream flows: %v", err)
	}
}

func TestPipeConnClose(t *testing.T) {
	d := loneDaemon(t, nil)
	s := newFakeStream(false)
	l := fakeLink(t, d, auth.PeerID{Cluster: "east", Node: "east-1"}, false, s)
	c := endpoint(t, l)
	if c.id != 2 {
		t.Fatalf("the acceptor's first pipe is %d, want 2", c.id)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	waitUntil(t, 5*time.Second, func() bool { return len(s.frames(t)) == 2 }, func() string { return "frames not written" })
	fs := s.frames(t)
	if o, ok := fs[0].(*wire.PipeOpen); !ok || o.ID != 2 || o.Node != "west-2" {
		t.Fatalf("first frame %#v, want PipeOpen 2 for west-2", fs[0])
	}
	if cl, ok := fs[1].(*wire.PipeClose); !ok || cl.ID != 2 || cl.Code != wire.PipeClosed {
		t.Fatalf("second frame %#v, want one PipeClose 2", fs[1])
	}
	if l.pm.lookup(2) != nil || d.relay.endpoints.Load() != 0 || testutil.ToFloat64(d.metrics.pipes.WithLabelValues(pipeRoleEndpoint)) != 0 {
		t.Fatal("a closed pipe is still counted or in its link's table")
	}

	// Closed by the peer: what came first is read, then io.EOF; Close
	// sends nothing more.
	c = endpoint(t, l)
	c.data([]byte("last"))
	c.closedByPeer(wire.PipeClosed, "")
	b, err := io.ReadAll(c)
	if string(b) != "last" || err != nil {
		t.Fatalf("read %q, %v after the peer's PipeClose; want last, then EOF", b, err)
	}
	c.Close()
	// Refused by a relay: the reason.
	c = endpoint(t, l)
	c.closedByPeer(wire.PipeNoLink, "no direct link up to west/west-2")
	var pe *pipeCloseError
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &pe) || pe.code != wire.PipeNoLink {
		t.Fatalf("read of a refused pipe: %v", err)
	}
	c.Close()
	waitUntil(t, 5*time.Second, func() bool { return len(s.frames(t)) == 4 }, func() string { return "frames not written" })
	if n := len(s.frames(t)); n != 4 { // 3 opens, 1 close (the peer closed the others)
		t.Fatalf("%d frames, want 4", n)
	}
	// The link ends: a waiting Read returns.
	c = endpoint(t, l)
	got := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); got <- err }()
	l.fail(errors.New("test: link down"))
	if err := <-got; !errors.Is(err, errPipeLinkDown) {
		t.Fatalf("read as the link ends: %v", err)
	}
}

// A peer that sends past the receive bound gets the pipe closed, counted.
func TestPipeReceiveOverflow(t *testing.T) {
	d := loneDaemon(t, func(lim *pipeLimits) { lim.recvBytes = 100 })
	s := newFakeStream(false)
	l := fakeLink(t, d, auth.PeerID{Cluster: "east", Node: "east-1"}, true, s)
	c := endpoint(t, l)
	c.data(make([]byte, 60))
	c.data(make([]byte, 60))
	if _, err := c.Read(make([]byte, 200)); !errors.Is(err, errPipeOverflow) {
		t.Fatalf("read after an overflow: %v", err)
	}
	if v := testutil.ToFloat64(d.metrics.pipeOverflow.WithLabelValues(pipeOverflowReceive)); v != 1 {
		t.Fatalf("receive overflows counted %v, want 1", v)
	}
	waitUntil(t, 5*time.Second, func() bool { return len(s.frames(t)) == 2 }, func() string { return "frames not written" })
	if cl, ok := s.frames(t)[1].(*wire.PipeClose); !ok || cl.Code != wire.PipeOverflow {
		t.Fatalf("%#v, want PipeClose Overflow", s.frames(t)[1])
	}
}

// A relay that cannot queue on the target's link within relayWait closes
// the pair both ways, counted.
func TestRelayQueueOverflow(t *testing.T) {
	d := loneDaemon(t, func(lim *pipeLimits) { lim.queueBytes, lim.chunk, lim.relayWait = 1000, 512, 100*time.Millisecond })
	sa, sb := newFakeStream(false), newFakeStream(true)
	la := fakeLink(t, d, auth.PeerID{Cluster: "east", Node: "east-1"}, false, sa)
	lb := fakeLink(t, d, auth.PeerID{Cluster: "west", Node: "west-2"}, true, sb)
	d.relay.active.Add(1)
	la.joinPipe(1, lb)
	if testutil.ToFloat64(d.metrics.pipes.WithLabelValues(pipeRoleRelay)) != 1 {
		t.Fatal("the relayed pair is not counted")
	}
	done := make(chan struct{})
	go func() { // as la's reader would
		defer close(done)
		for range 100 {
			e := la.pm.lookup(1)
			if e == nil {
				return
			}
			e.data(make([]byte, 512))
		}
	}()
	waitUntil(t, 10*time.Second, func() bool {
		return testutil.ToFloat64(d.metrics.pipeOverflow.WithLabelValues(pipeOverflowRelayQueue)) == 1
	}, func() string { return "no relay_queue overflow counted" })
	<-done
	waitUntil(t, 5*time.Second, func() bool { return len(sa.frames(t)) == 1 }, func() string { return "no PipeClose to the origin" })
	if cl, ok := sa.frames(t)[0].(*wire.PipeClose); !ok || cl.ID != 1 || cl.Code != wire.PipeOverflow {
		t.Fatalf("%#v, want PipeClose 1 Overflow", sa.frames(t)[0])
	}
	if d.relay.active.Load() != 0 || la.pm.lookup(1) != nil || lb.pm.lookup(1) != nil {
		t.Fatal("the closed pair is still counted or in a table")
	}
}

// Pipe IDs: odd from the link's dialer, even from its acceptor, growing.
func TestPipeIDs(t *testing.T) {
	d := loneDaemon(t, nil)
	l := fakeLink(t, d, auth.PeerID{Cluster: "east", Node: "east-1"}, true, newFakeStream(false))
	l.pm.mu.Lock()
	a, b := l.pm.newID(), l.pm.newID()
	l.pm.mu.Unlock()
	if a != 1 || b != 3 {
		t.Fatalf("the dialer's IDs %d, %d; want 1, 3", a, b)
	}
	l.pm.peerID = 4
	for _, id := range []uint64{5, 4, 2} { // the peer (acceptor) opens even IDs, growing
		if err := l.pm.opened(&wire.PipeOpen{ID: id, Cluster: "east", Node: "east-2"}); err == nil {
			t.Errorf("PipeOpen %d after 4 accepted from the link's acceptor", id)
		}
	}
}

// When one link of a relayed pair ends, the relay closes the other pipe
// (LinkDown) and forgets the pair; an endpoint pipe on the link fails.
func TestRelayLinkDown(t *testing.T) {
	d := loneDaemon(t, nil)
	sa, sb := newFakeStream(false), newFakeStream(false)
	la := fakeLink(t, d, auth.PeerID{Cluster: "east", Node: "east-1"}, false, sa)
	lb := fakeLink(t, d, auth.PeerID{Cluster: "west", Node: "west-2"}, true, sb)
	d.relay.active.Add(1)
	la.joinPipe(1, lb)
	c := endpoint(t, la)
	la.fail(errors.New("test: link down"))
	la.pm.quit()
	la.wg.Wait()
	la.pm.end()
	waitUntil(t, 5*time.Second, func() bool { return len(sb.frames(t)) == 2 }, func() string { return "no PipeClose to the target" })
	if cl, ok := sb.frames(t)[1].(*wire.PipeClose); !ok || cl.ID != 1 || cl.Code != wire.PipeLinkDown {
		t.Fatalf("%#v, want PipeClose 1 LinkDown", sb.frames(t)[1])
	}
	if d.relay.active.Load() != 0 || lb.pm.lookup(1) != nil || testutil.ToFloat64(d.metrics.pipes.WithLabelValues(pipeRoleRelay)) != 0 {
		t.Fatal("the pair outlived its link")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, errPipeLinkDown) || d.relay.endpoints.Load() != 0 {
		t.Fatalf("write on a pipe whose link ended: %v (%d endpoints)", err, d.relay.endpoints.Load())
	}
}
