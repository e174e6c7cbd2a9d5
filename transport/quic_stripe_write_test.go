package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"
)

// stripedPair opens a striped stream over a Conn of n QUIC connections and
// accepts it on the other side.
func stripedPair(t *testing.T, n int) (w, r *stripedStream) {
	t.Helper()
	e := newEnv(t, transportCases()[0])
	o := e.opts()
	o.QUICConns = n
	client, server := e.pair(o)
	waitMembers(t, client, n)
	waitMembers(t, server, n)
	s, err := client.OpenStream(ctxTimeout(t, waitLong))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte{0}); err != nil { // the acceptor sees a stream once bytes arrive
		t.Fatal(err)
	}
	a, err := server.AcceptStream(ctxTimeout(t, waitLong))
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(a, b[:]); err != nil {
		t.Fatal(err)
	}
	return s.(*stripedStream), a.(*stripedStream)
}

// Writes return once their chunks are queued on the members; a Close right
// after them still sends every byte, in order, and then the end.
func TestQUICStripesCloseSendsWhatWasQueued(t *testing.T) {
	w, r := stripedPair(t, 3)
	want := make([]byte, 2<<20)
	for i := range want {
		want[i] = byte(i * 7 / 3)
	}
	// The reader reads at the same time: QUIC's stream windows start
	// smaller than 2 MiB.
	werr := make(chan error, 1)
	go func() {
		for b := want; len(b) > 0; b = b[min(len(b), 40_000):] {
			if _, err := w.Write(b[:min(len(b), 40_000)]); err != nil {
				werr <- fmt.Errorf("write: %w", err)
				return
			}
		}
		if err := w.Close(); err != nil {
			werr <- fmt.Errorf("close: %w", err)
			return
		}
		if _, err := w.Write([]byte("late")); !errors.Is(err, ErrClosed) {
			werr <- fmt.Errorf("write after Close: %v, want ErrClosed", err)
			return
		}
		werr <- nil
	}()
	_ = r.SetDeadline(time.Now().Add(waitLong))
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v after %d bytes", err, len(got))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d; equal prefix %d", len(got), len(want), commonPrefix(got, want))
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// A stream whose reader stops takes at most what the members' queues and
// QUIC's stream windows hold; then Write waits for room and fails at its
// deadline.
func TestQUICStripesWriteWaitsForRoom(t *testing.T) {
	const n = 2
	w, _ := stripedPair(t, n)
	limit := n * (maxMemberQueued + quicMaxStreamWindow + 2*maxStripeChunk)
	_ = w.SetDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64<<10)
	total := 0
	for {
		k, err := w.Write(buf)
		total += k
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %v, want a deadline error", err)
			}
			break
		}
		if total > limit {
			t.Fatalf("took %d bytes the peer does not read, more than %d", total, limit)
		}
	}
	if total < maxMemberQueued {
		t.Fatalf("took only %d bytes before waiting", total)
	}
}

// The next chunk goes to the member that would send it soonest: the least
// queued for its congestion window.
func TestQUICStripesPickNextLeastQueued(t *testing.T) {
	w, _ := stripedPair(t, 3)
	w.wmu.Lock()
	defer w.wmu.Unlock()
	cw := func(i int) float64 { return float64(w.members[i].c.qc.ConnectionStats().CongestionWindow) }
	saved := append([]int(nil), w.queued...)
	defer copy(w.queued, saved)
	// Give every member a backlog of 2 of its windows but member 1, with 1.
	for i := range w.queued {
		w.queued[i] = int(2 * cw(i))
	}
	w.queued[1] = int(cw(1))
	if got := w.pickNext(100); got != 1 {
		t.Fatalf("pickNext = %d with backlogs %v and windows %.0f %.0f %.0f, want 1", got, w.queued, cw(0), cw(1), cw(2))
	}
}
