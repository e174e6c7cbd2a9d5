package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// A random mix of everything that puts messages in a queue and takes them
// out (copies one by one and in batches, at-most-once and reliable, with
// and without TTL; hand-outs kept for a while before Done; acks, rewinds,
// expiry, drop-oldest, discard) never shows a writer a message that is not
// the one queued: the recycled blocks are reused only once nothing can read
// what was in them.
func TestRecycledBlocksNeverShowAnotherMessage(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		clk := newClock()
		pol := Reject
		if seed%2 == 1 {
			pol = DropOldest
		}
		q := New(Limits{MaxMessages: 300, Overflow: pol}, clk.now)
		id := uint64(0)
		// payloadOf is the content message number n carries: its number,
		// then filler that depends on it, of a length that depends on it.
		payloadOf := func(n uint64) []byte {
			p := binary.BigEndian.AppendUint64(nil, n)
			return append(p, bytes.Repeat([]byte{byte(n)}, int(n*7919%(slabMax+200)))...)
		}
		check := func(where string, m *Message) {
			t.Helper()
			n, p := m.To, m.Payload
			if len(p) != 8+int(n*7919%(slabMax+200)) || binary.BigEndian.Uint64(p) != n || len(p) > 8 && (p[8] != byte(n) || p[len(p)-1] != byte(n)) {
				t.Fatalf("seed %d, %s: message %d (Seq %d) carries another payload (%d bytes)", seed, where, m.To, m.Seq, len(m.Payload))
			}
		}
		var out [][]*Message // batches handed out, not yet Done
		var gen uint64
		for step := range 3000 {
			switch op := rng.IntN(100); {
			case op < 35: // one message
				id++
				m := Message{Lane: uint8(rng.IntN(2)), To: id, Payload: payloadOf(id)}
				if rng.IntN(4) == 0 {
					m.Flags = 1 // at-most-once
				}
				if rng.IntN(5) == 0 {
					m.Deadline = clk.now().Add(time.Duration(1+rng.IntN(50)) * time.Millisecond)
				}
				if err := q.EnqueueCopy(&m, clk.now()); err != nil && !errors.Is(err, ErrBusy) {
					t.Fatal(err)
				}
			case op < 50: // a batch (same To for all: the batch's number)
				id++
				n := uint64(1 + rng.IntN(100))
				tmpl := Message{Lane: uint8(rng.IntN(2)), To: id}
				p := payloadOf(id)
				seq := func(yield func([]byte) bool) {
					for range n {
						if !yield(p) {
							return
						}
					}
				}
				if _, err := q.EnqueueCopyBatch(&tmpl, seq, clk.now()); err != nil && !errors.Is(err, ErrBusy) {
					t.Fatal(err)
				}
			case op < 70 && len(out) < 6: // a writer takes a batch, and keeps it for a while
				b := q.Next(gen, rng.IntN(2), 1+rng.IntN(80), nil)
				for _, m := range b {
					check("handed out", m)
				}
				if len(b) > 0 {
					out = append(out, b)
				}
			case op < 80 && len(out) > 0, op < 70: // a writer is done with its oldest batch
				for _, m := range out[0] {
					check("read until Done", m)
				}
				out = out[1:]
				q.Done()
			case op < 90: // an ack of what was handed out on a lane
				ln := rng.IntN(2)
				q.mu.Lock()
				l := &q.lanes[ln]
				var top uint64
				for _, m := range l.msgs[:l.sent] {
					if m.Seq > top && rng.IntN(3) > 0 {
						top = m.Seq
					}
				}
				q.mu.Unlock()
				if top > 0 {
					if err := q.Ack(ln, top); err != nil {
						t.Fatal(err)
					}
				}
			case op < 94:
				clk.add(time.Duration(rng.IntN(20)) * time.Millisecond)
			case op < 98:
				gen = q.Rewind() // a new link: an old writer may still hold its batches
			case op < 99:
				q.Discard()
			}
			for _, b := range out { // what writers hold never changes
				for _, m := range b {
					check("held", m)
				}
			}
			if step%100 == 0 {
				checkInvariants(t, q)
			}
		}
		for range out {
			q.Done()
		}
		checkInvariants(t, q)
	}
}
