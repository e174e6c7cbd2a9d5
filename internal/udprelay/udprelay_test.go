package udprelay

import (
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo is a UDP server that answers every datagram with itself and records
// what it received, and from where.
type echo struct {
	c *net.UDPConn

	mu    sync.Mutex
	got   []string // payloads received; guarded by mu
	peers []string // distinct source addresses; guarded by mu
}

func newEcho(t *testing.T) *echo {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{c: c}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.got = append(e.got, string(buf[:n]))
			if !slices.Contains(e.peers, from.String()) {
				e.peers = append(e.peers, from.String())
			}
			e.mu.Unlock()
			c.WriteToUDP(buf[:n], from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return e
}

func (e *echo) received() (got, peers []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got), slices.Clone(e.peers)
}

// newRelay starts a relay to e, closed at the end of the test.
func newRelay(t *testing.T, e *echo, hook Hook) *Relay {
	t.Helper()
	r, err := New("127.0.0.1:0", e.c.LocalAddr().String(), hook)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// dial opens a client socket to the relay, closed at the end of the test.
func dial(t *testing.T, r *Relay) net.Conn {
	t.Helper()
	c, err := net.Dial("udp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// read returns the next datagram on c, failing the test after 5 s.
func read(t *testing.T, c net.Conn) string {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return string(buf[:n])
}

func TestForwardsBothWaysOneUpstreamPerClient(t *testing.T) {
	e := newEcho(t)
	var mu sync.Mutex
	var seen []string
	r := newRelay(t, e, func(dir Direction, b []byte, write func([]byte)) {
		mu.Lock()
		seen = append(seen, dir.String()+" "+string(b))
		mu.Unlock()
		write(b)
	})
	a, b := dial(t, r), dial(t, r)
	for _, c := range []net.Conn{a, b, a} {
		msg := "from " + c.LocalAddr().String()
		c.Write([]byte(msg))
		if got := read(t, c); got != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
	if _, peers := e.received(); len(peers) != 2 {
		t.Fatalf("the target saw peers %q, want one per client (2)", peers)
	}
	mu.Lock()
	defer mu.Unlock()
	msgA := "from " + a.LocalAddr().String()
	want := []string{"forward " + msgA, "backward " + msgA}
	if len(seen) != 6 || !slices.Equal(seen[:2], want) {
		t.Fatalf("the hook saw %q, want each datagram once each way, starting with %q", seen, want)
	}
}

func TestNilHookForwards(t *testing.T) {
	r := newRelay(t, newEcho(t), nil)
	c := dial(t, r)
	c.Write([]byte("plain"))
	if got := read(t, c); got != "plain" {
		t.Fatalf("echo %q, want %q", got, "plain")
	}
}

func TestHookDropsAndWritesLater(t *testing.T) {
	e := newEcho(t)
	var later sync.WaitGroup
	t.Cleanup(later.Wait)
	r := newRelay(t, e, func(dir Direction, b []byte, write func([]byte)) {
		switch {
		case dir == Forward && string(b) == "drop":
		case dir == Backward && string(b) == "late":
			p := append([]byte(nil), b...) // b is not ours after the return
			later.Go(func() { write(p) })
		default:
			write(b)
		}
	})
	c := dial(t, r)
	for _, m := range []string{"drop", "late", "keep"} {
		c.Write([]byte(m))
	}
	got := []string{read(t, c), read(t, c)}
	slices.Sort(got)
	if !slices.Equal(got, []string{"keep", "late"}) {
		t.Fatalf("echoes %q, want keep and late (in any order)", got)
	}
	// The target read in order: a forwarded "drop" would precede "keep".
	if sent, _ := e.received(); slices.Contains(sent, "drop") {
		t.Fatalf("the target received %q, including the dropped datagram", sent)
	}
}

// relayGoroutines counts the goroutines running the relay's code now,
// without goleak's retries: Close must have waited for them already.
func relayGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "udprelay.(*Relay)") {
			n++
		}
	}
	return n
}

func TestCloseWaitsForHooksAndGoroutines(t *testing.T) {
	e := newEcho(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var returned atomic.Bool
	r, err := New("127.0.0.1:0", e.c.LocalAddr().String(), func(dir Direction, b []byte, write func([]byte)) {
		if dir == Forward && string(b) == "block" {
			close(entered)
			<-release
			returned.Store(true)
		}
		write(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, r)
	c.Write([]byte("ok"))
	read(t, c)
	if n := relayGoroutines(); n != 2 {
		t.Fatalf("%d relay goroutines with one session, want 2 (serve and the upstream reader)", n)
	}
	c.Write([]byte("block"))
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the hook never ran")
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a hook was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return once the hook did")
	}
	if !returned.Load() {
		t.Fatal("Close returned before the hook")
	}
	if n := relayGoroutines(); n != 0 {
		t.Fatalf("%d relay goroutines still run after Close", n)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
