package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is the injected clock of every test: time moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const flagAtMostOnce = 1

// seqLanes are the lanes whose Seqs Enqueue assigns.
var seqLanes = []uint8{LaneNormal, LaneHigh}

// rel returns a reliable message of lane ln with an n-byte payload; To tags it.
func rel(ln uint8, tag uint64, n int) *Message {
	return &Message{Lane: ln, To: tag, Payload: bytes.Repeat([]byte{byte(tag)}, n)}
}

// amo returns an at-most-once message.
func amo(ln uint8, tag uint64, n int) *Message {
	m := rel(ln, tag, n)
	m.Flags = flagAtMostOnce
	return m
}

func mustEnqueue(t testing.TB, q *Queue, ms ...*Message) {
	t.Helper()
	for _, m := range ms {
		if err := q.Enqueue(m); err != nil {
			t.Fatalf("Enqueue(tag %d, lane %d): %v", m.To, m.Lane, err)
		}
	}
}

func seqs(ms []*Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func tags(ms []*Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.To
	}
	return out
}

// drain calls Next until it returns nothing.
func drain(q *Queue, gen uint64, ln int) []*Message {
	var out []*Message
	for {
		got := q.Next(gen, ln, 7, nil)
		if len(got) == 0 {
			return out
		}
		out = append(out, got...)
	}
}

// checkInvariants verifies the queue's internal bookkeeping.
func checkInvariants(t testing.TB, q *Queue) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	count, size := 0, int64(0)
	for li := range q.lanes {
		l := &q.lanes[li]
		if l.sent < 0 || l.sent > len(l.msgs) {
			t.Fatalf("lane %d: sent %d out of [0,%d]", li, l.sent, len(l.msgs))
		}
		dead, last, inflight := 0, uint64(0), int64(0)
		for i, m := range l.msgs {
			if i < l.sent && !m.dead && !m.AtMostOnce() {
				inflight += int64(len(m.Payload))
			}
			if m == nil {
				t.Fatalf("lane %d: nil message at %d", li, i)
			}
			if int(m.Lane) != li {
				t.Fatalf("lane %d holds a message of lane %d", li, m.Lane)
			}
			if m.dead {
				dead++
			} else {
				count++
				size += int64(len(m.Payload))
				if i < l.sent && m.AtMostOnce() {
					t.Fatalf("lane %d: at-most-once message %d handed out but still held", li, i)
				}
			}
			if m.Seq != 0 {
				if m.Seq <= last {
					t.Fatalf("lane %d: seq %d after %d", li, m.Seq, last)
				}
				last = m.Seq
			}
		}
		if dead != l.dead {
			t.Fatalf("lane %d: %d tombstones, but dead = %d", li, dead, l.dead)
		}
		unsent := 0
		for _, m := range l.msgs[l.sent:] {
			if !m.dead {
				unsent++
			}
		}
		if unsent != l.unsent {
			t.Fatalf("lane %d: %d messages not handed out, but unsent = %d", li, unsent, l.unsent)
		}
		if inflight != l.inflight {
			t.Fatalf("lane %d: %d bytes handed out and unacked, but inflight = %d", li, inflight, l.inflight)
		}
		if last >= l.nextSeq {
			t.Fatalf("lane %d: holds seq %d, nextSeq %d", li, last, l.nextSeq)
		}
	}
	if count != q.count || size != q.bytes {
		t.Fatalf("count/bytes = %d/%d, messages held %d/%d", q.count, q.bytes, count, size)
	}
}

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Policy
		wantErr bool
	}{
		{"", Reject, false},
		{"reject", Reject, false},
		{"drop-oldest", DropOldest, false},
		{"drop_oldest", Reject, true},
		{"Reject", Reject, true},
		{"block", Reject, true},
	} {
		got, err := ParsePolicy(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestLimitsDefaults(t *testing.T) {
	got := New(Limits{MaxBytes: -1, MaxAge: time.Second, Overflow: DropOldest}, nil).Limits()
	want := Limits{MaxBytes: 64 << 20, MaxMessages: 1_000_000, MaxAge: time.Second, Overflow: DropOldest}
	if got != want {
		t.Fatalf("Limits() = %+v, want %+v", got, want)
	}
	got = New(Limits{MaxBytes: 10, MaxMessages: 3}, nil).Limits()
	if got.MaxBytes != 10 || got.MaxMessages != 3 || got.Overflow != Reject {
		t.Fatalf("explicit limits changed: %+v", got)
	}
}

func TestEnqueueSeqPerLane(t *testing.T) {
	type in struct {
		lane uint8
		amo  bool
	}
	for _, tc := range []struct {
		name string
		msgs []in
		want []uint64
	}{
		{"one lane", []in{{0, false}, {0, false}, {0, false}}, []uint64{1, 2, 3}},
		{"interleaved lanes", []in{{0, false}, {1, false}, {1, false}, {0, false}, {1, false}}, []uint64{1, 1, 2, 2, 3}},
		{"at-most-once takes no seq", []in{{0, false}, {0, true}, {0, false}, {1, true}, {1, false}}, []uint64{1, 0, 2, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := New(Limits{}, newClock().now)
			for i, x := range tc.msgs {
				m := rel(x.lane, uint64(i), 1)
				if x.amo {
					m = amo(x.lane, uint64(i), 1)
				}
				m.Seq = 99 // overwritten by Enqueue
				mustEnqueue(t, q, m)
				if m.Seq != tc.want[i] {
					t.Errorf("message %d (lane %d, amo %v): Seq %d, want %d", i, x.lane, x.amo, m.Seq, tc.want[i])
				}
			}
			checkInvariants(t, q)
		})
	}
}

func TestEnqueueSetsEnqueuedAndRejectsBadLane(t *testing.T) {
	clk := newClock()
	q := New(Limits{}, clk.now)
	m := rel(LaneHigh, 1, 3)
	mustEnqueue(t, q, m)
	if !m.Enqueued.Equal(clk.now()) {
		t.Fatalf("Enqueued = %v, want %v", m.Enqueued, clk.now())
	}
	if err := q.Enqueue(rel(NumLanes, 2, 1)); err == nil {
		t.Fatal("Enqueue on lane NumLanes: no error")
	}
	if s := q.Stats(); s.Messages != 1 || s.Enqueued != 1 {
		t.Fatalf("after a bad lane: %+v", s)
	}
}

func TestAtMostOnceLeavesAtNext(t *testing.T) {
	q := New(Limits{}, newClock().now)
	mustEnqueue(t, q, rel(0, 1, 10), amo(0, 2, 20), rel(0, 3, 30), amo(0, 4, 40))
	got := q.Next(0, LaneNormal, 10, nil)
	if want := []uint64{1, 2, 3, 4}; !slices.Equal(tags(got), want) {
		t.Fatalf("first pass tags %v, want %v", tags(got), want)
	}
	s := q.Stats()
	if s.Messages != 2 || s.Bytes != 40 || s.Sent != 4 {
		t.Fatalf("after Next: Messages %d Bytes %d Sent %d; want 2, 40, 4", s.Messages, s.Bytes, s.Sent)
	}
	// The at-most-once payloads stay readable for the link writer.
	if !bytes.Equal(got[1].Payload, bytes.Repeat([]byte{2}, 20)) {
		t.Fatal("at-most-once payload changed after Next")
	}
	checkInvariants(t, q)
	gen := q.Rewind()
	again := drain(q, gen, LaneNormal)
	if want := []uint64{1, 3}; !slices.Equal(tags(again), want) {
		t.Fatalf("after Rewind tags %v, want %v (at-most-once redelivered?)", tags(again), want)
	}
	if s := q.Stats(); s.Redelivered != 2 || s.Sent != 4 {
		t.Fatalf("Redelivered %d Sent %d, want 2, 4", s.Redelivered, s.Sent)
	}
	checkInvariants(t, q)
}

// Handed-out at-most-once messages at the front of a lane leave no slot.
func TestNextTrimsFront(t *testing.T) {
	q := New(Limits{}, newClock().now)
	mustEnqueue(t, q, amo(0, 1, 1), amo(0, 2, 1), amo(0, 3, 1))
	q.Next(0, 0, 2, nil)
	if n := len(q.lanes[0].msgs); n != 1 {
		t.Fatalf("lane holds %d slots for 1 message", n)
	}
	q.Next(0, 0, 2, nil)
	if n := len(q.lanes[0].msgs); n != 0 || q.lanes[0].sent != 0 {
		t.Fatalf("lane holds %d slots (sent %d) when empty", n, q.lanes[0].sent)
	}
	checkInvariants(t, q)
}

func TestNextMaxAndGeneration(t *testing.T) {
	q := New(Limits{}, newClock().now)
	for i := range 5 {
		mustEnqueue(t, q, rel(0, uint64(i+1), 1))
	}
	if got := q.Next(0, LaneNormal, 0, nil); len(got) != 0 {
		t.Fatalf("max 0 returned %d", len(got))
	}
	if got := q.Next(0, LaneHigh, 10, nil); len(got) != 0 {
		t.Fatalf("empty lane returned %d", len(got))
	}
	got := q.Next(0, LaneNormal, 2, nil)
	if !slices.Equal(seqs(got), []uint64{1, 2}) {
		t.Fatalf("first batch %v", seqs(got))
	}
	// Next appends to dst and counts its existing length against max.
	got = q.Next(0, LaneNormal, 3, got)
	if !slices.Equal(seqs(got), []uint64{1, 2, 3}) {
		t.Fatalf("appended batch %v", seqs(got))
	}
	gen := q.Rewind()
	if gen == 0 {
		t.Fatal("Rewind returned the initial generation")
	}
	if got := q.Next(0, LaneNormal, 10, nil); len(got) != 0 {
		t.Fatalf("stale generation got %v", seqs(got))
	}
	if got := q.Next(gen+1, LaneNormal, 10, nil); len(got) != 0 {
		t.Fatalf("future generation got %v", seqs(got))
	}
	// The stale Next took nothing: the current generation gets everything.
	if got := drain(q, gen, LaneNormal); !slices.Equal(seqs(got), []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("current generation got %v", seqs(got))
	}
	gen2 := q.Rewind()
	if gen2 <= gen {
		t.Fatalf("generations %d then %d", gen, gen2)
	}
	if got := q.Next(gen, LaneNormal, 10, nil); len(got) != 0 {
		t.Fatalf("previous generation got %v", seqs(got))
	}
}

func TestAck(t *testing.T) {
	q := New(Limits{}, newClock().now)
	for i := range 5 {
		mustEnqueue(t, q, rel(0, uint64(i+1), (i+1)*10)) // 10..50 bytes, 150 total
	}
	mustEnqueue(t, q, rel(1, 9, 7))
	q.Next(0, LaneNormal, 10, nil)
	steps := []struct {
		lane      int
		seq       uint64
		wantErr   error // nil, ErrBadAck or errAny
		messages  int
		bytes     int64
		acked     uint64
		remaining []uint64 // lane 0 seqs after Rewind
	}{
		{0, 3, nil, 3, 90 + 7, 3, []uint64{4, 5}},
		{0, 2, nil, 3, 90 + 7, 3, []uint64{4, 5}}, // old ack: no-op
		{0, 3, nil, 3, 90 + 7, 3, []uint64{4, 5}}, // duplicate
		{0, 6, ErrBadAck, 3, 90 + 7, 3, []uint64{4, 5}},
		{0, 1 << 40, ErrBadAck, 3, 90 + 7, 3, []uint64{4, 5}},
		{1, 2, ErrBadAck, 3, 90 + 7, 3, []uint64{4, 5}},
		{NumLanes, 1, errAny, 3, 90 + 7, 3, []uint64{4, 5}},
		{-1, 1, errAny, 3, 90 + 7, 3, []uint64{4, 5}},
		{1, 1, nil, 2, 90, 4, []uint64{4, 5}}, // never handed out, but queued
		{0, 5, nil, 0, 0, 6, nil},
	}
	for i, st := range steps {
		err := q.Ack(st.lane, st.seq)
		switch {
		case st.wantErr == nil && err != nil:
			t.Fatalf("step %d: Ack(%d, %d): %v", i, st.lane, st.seq, err)
		case st.wantErr == errAny && (err == nil || errors.Is(err, ErrBadAck)):
			t.Fatalf("step %d: Ack(%d, %d) = %v, want a lane error", i, st.lane, st.seq, err)
		case st.wantErr == ErrBadAck && !errors.Is(err, ErrBadAck):
			t.Fatalf("step %d: Ack(%d, %d) = %v, want ErrBadAck", i, st.lane, st.seq, err)
		}
		s := q.Stats()
		if s.Messages != st.messages || s.Bytes != st.bytes || s.Acked != st.acked {
			t.Fatalf("step %d: Messages %d Bytes %d Acked %d; want %d %d %d", i, s.Messages, s.Bytes, s.Acked, st.messages, st.bytes, st.acked)
		}
		checkInvariants(t, q)
		q2 := q.snapshotForTest()
		if got := seqs(drain(q2, q2.gen, LaneNormal)); !slices.Equal(got, st.remaining) {
			t.Fatalf("step %d: lane 0 holds %v, want %v", i, got, st.remaining)
		}
	}
}

var errAny = errors.New("any error")

// snapshotForTest returns a rewound deep copy of q's lanes, to look at what
// a reconnect would resend without disturbing q.
func (q *Queue) snapshotForTest() *Queue {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := New(q.limits, q.now)
	c.gen = q.gen
	for i := range q.lanes {
		l := q.lanes[i]
		for _, m := range l.msgs {
			cp := *m
			c.lanes[i].msgs = append(c.lanes[i].msgs, &cp)
		}
		c.lanes[i].dead = l.dead
		c.lanes[i].nextSeq = l.nextSeq
		c.lanes[i].resent = l.resent
	}
	c.count, c.bytes = q.count, q.bytes
	return c
}

// An ack must not take away an at-most-once message that was queued behind
// the acked ones and never handed to a link.
func TestAckKeepsUnsentAtMostOnce(t *testing.T) {
	q := New(Limits{}, newClock().now)
	mustEnqueue(t, q, rel(0, 1, 5))
	if got := q.Next(0, LaneNormal, 10, nil); len(got) != 1 {
		t.Fatalf("Next = %d messages", len(got))
	}
	mustEnqueue(t, q, amo(0, 2, 6), rel(0, 3, 7))
	if err := q.Ack(LaneNormal, 1); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Messages != 2 || s.Bytes != 13 || s.Acked != 1 || s.Unsent != 2 {
		t.Fatalf("after Ack(1): %+v, want 2 messages, 13 bytes, 1 acked, 2 unsent", s)
	}
	checkInvariants(t, q)
	if got := tags(q.Next(0, LaneNormal, 10, nil)); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("Next after ack = tags %v, want [2 3]", got)
	}
	checkInvariants(t, q)
}

func TestRewindRedelivers(t *testing.T) {
	q := New(Limits{}, newClock().now)
	for i := range 5 {
		mustEnqueue(t, q, rel(0, uint64(i+1), 1))
	}
	mustEnqueue(t, q, rel(1, 100, 1))
	if got := seqs(q.Next(0, LaneNormal, 3, nil)); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("first pass %v", got)
	}
	if err := q.Ack(LaneNormal, 1); err != nil {
		t.Fatal(err)
	}
	gen := q.Rewind()
	mustEnqueue(t, q, rel(0, 6, 1))
	if got := seqs(drain(q, gen, LaneNormal)); !slices.Equal(got, []uint64{2, 3, 4, 5, 6}) {
		t.Fatalf("after Rewind %v, want [2 3 4 5 6]", got)
	}
	s := q.Stats()
	// 1,2,3 first; then 2,3 again; then 4,5,6 first.
	if s.Sent != 6 || s.Redelivered != 2 {
		t.Fatalf("Sent %d Redelivered %d, want 6, 2", s.Sent, s.Redelivered)
	}
	// The high lane was never handed out: its first Next counts as Sent.
	if got := seqs(q.Next(gen, LaneHigh, 10, nil)); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("high lane %v", got)
	}
	// A second reconnect before any ack re-offers everything once more.
	gen = q.Rewind()
	mustEnqueue(t, q, rel(0, 7, 1))
	if got := seqs(drain(q, gen, LaneNormal)); !slices.Equal(got, []uint64{2, 3, 4, 5, 6, 7}) {
		t.Fatalf("after 2nd Rewind %v", got)
	}
	s = q.Stats()
	if s.Sent != 8 || s.Redelivered != 7 {
		t.Fatalf("Sent %d Redelivered %d, want 8, 7", s.Sent, s.Redelivered)
	}
	// Rewind with nothing handed out since redelivers nothing new.
	gen = q.Rewind()
	q.Next(gen, LaneNormal, 2, nil) // 2, 3 again
	gen = q.Rewind()
	if got := seqs(drain(q, gen, LaneNormal)); !slices.Equal(got, []uint64{2, 3, 4, 5, 6, 7}) {
		t.Fatalf("after partial pass %v", got)
	}
	if s := q.Stats(); s.Sent != 8 || s.Redelivered != 7+2+6 {
		t.Fatalf("Sent %d Redelivered %d, want 8, 15", s.Sent, s.Redelivered)
	}
	checkInvariants(t, q)
}

func TestRewindWakesEveryLane(t *testing.T) {
	q := New(Limits{}, newClock().now)
	q.Rewind()
	for ln := range NumLanes {
		select {
		case <-q.Notify(ln):
		default:
			t.Fatalf("lane %d not woken by Rewind", ln)
		}
	}
}

func TestRejectPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits Limits
		fill   []int // payload sizes accepted first
		next   *Message
	}{
		{"max messages", Limits{MaxMessages: 3}, []int{1, 1, 1}, rel(0, 9, 1)},
		{"max messages other lane", Limits{MaxMessages: 3}, []int{1, 1, 1}, rel(1, 9, 1)},
		{"max messages at-most-once", Limits{MaxMessages: 2}, []int{1, 1}, amo(0, 9, 1)},
		{"max bytes", Limits{MaxBytes: 100}, []int{40, 40}, rel(0, 9, 21)},
		{"max bytes single", Limits{MaxBytes: 100}, nil, rel(0, 9, 101)},
		{"max bytes drop-oldest oversize", Limits{MaxBytes: 100, Overflow: DropOldest}, []int{10, 10}, rel(0, 9, 101)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := New(tc.limits, newClock().now)
			for i, n := range tc.fill {
				mustEnqueue(t, q, rel(0, uint64(i+1), n))
			}
			before := q.Stats()
			err := q.Enqueue(tc.next)
			if !errors.Is(err, ErrBusy) {
				t.Fatalf("Enqueue = %v, want ErrBusy", err)
			}
			after := q.Stats()
			if after.Rejected != before.Rejected+1 {
				t.Fatalf("Rejected %d -> %d", before.Rejected, after.Rejected)
			}
			if after.Messages != before.Messages || after.Bytes != before.Bytes || after.Enqueued != before.Enqueued || len(after.Dropped) != 0 {
				t.Fatalf("queue changed by a rejected Enqueue: %+v -> %+v", before, after)
			}
			if got := tags(drain(q, 0, 0)); len(got) != len(tc.fill) {
				t.Fatalf("lane 0 holds %v after reject", got)
			}
			checkInvariants(t, q)
		})
	}
}

func TestRejectDoesNotConsumeSeq(t *testing.T) {
	q := New(Limits{MaxMessages: 2}, newClock().now)
	mustEnqueue(t, q, rel(0, 1, 1), rel(0, 2, 1))
	m := rel(0, 3, 1)
	if err := q.Enqueue(m); !errors.Is(err, ErrBusy) {
		t.Fatalf("Enqueue = %v", err)
	}
	q.Next(0, 0, 1, nil)
	if err := q.Ack(0, 1); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, q, m)
	if m.Seq != 3 {
		t.Fatalf("Seq after a rejected attempt = %d, want 3", m.Seq)
	}
}

func TestDropOldest(t *testing.T) {
	q := New(Limits{MaxMessages: 3, Overflow: DropOldest}, newClock().now)
	mustEnqueue(t, q, rel(0, 1, 1), rel(0, 2, 1), rel(0, 3, 1))
	if got := tags(q.Next(0, 0, 1, nil)); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("Next %v", got)
	}
	// 1 is handed out and awaits its ack: 2 is the oldest unsent.
	mustEnqueue(t, q, rel(0, 4, 1))
	s := q.Stats()
	if s.Dropped[DropOverflow] != 1 || s.Messages != 3 || s.Unsent != 2 || s.Rejected != 0 {
		t.Fatalf("after drop: %+v", s)
	}
	if got := tags(q.Next(0, 0, 10, nil)); !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("Next after drop %v, want [3 4]", got)
	}
	checkInvariants(t, q)
	// Everything is handed out: nothing may be dropped.
	if err := q.Enqueue(rel(0, 5, 1)); !errors.Is(err, ErrBusy) {
		t.Fatalf("Enqueue with nothing unsent = %v, want ErrBusy", err)
	}
	// Only the new message's lane is a victim.
	if err := q.Enqueue(rel(1, 6, 1)); !errors.Is(err, ErrBusy) {
		t.Fatalf("Enqueue on the other lane = %v, want ErrBusy", err)
	}
	s = q.Stats()
	if s.Rejected != 2 || s.Dropped[DropOverflow] != 1 {
		t.Fatalf("after rejects: %+v", s)
	}
	// A reconnect does not make the messages awaiting an ack droppable.
	gen := q.Rewind()
	if err := q.Enqueue(rel(0, 7, 1)); !errors.Is(err, ErrBusy) {
		t.Fatalf("Enqueue after Rewind = %v, want ErrBusy", err)
	}
	if got := tags(drain(q, gen, 0)); !slices.Equal(got, []uint64{1, 3, 4}) {
		t.Fatalf("redelivered %v, want [1 3 4]", got)
	}
	if s := q.Stats(); s.Dropped[DropOverflow] != 1 || s.Rejected != 3 {
		t.Fatalf("after Rewind: %+v", s)
	}
	checkInvariants(t, q)
}

func TestDropOldestAfterRewindSkipsResent(t *testing.T) {
	q := New(Limits{MaxMessages: 3, Overflow: DropOldest}, newClock().now)
	mustEnqueue(t, q, rel(0, 1, 1), rel(0, 2, 1))
	q.Next(0, 0, 10, nil)
	gen := q.Rewind()
	mustEnqueue(t, q, rel(0, 3, 1))
	mustEnqueue(t, q, rel(0, 4, 1)) // must drop 3, the only message never handed out
	if got := tags(drain(q, gen, 0)); !slices.Equal(got, []uint64{1, 2, 4}) {
		t.Fatalf("after Rewind + drop %v, want [1 2 4]", got)
	}
	checkInvariants(t, q)
}

// When dropping every unsent message of the lane still would not make room,
// DropOldest must not drop anything: the new message is refused anyway.
func TestDropOldestDropsNothingInVain(t *testing.T) {
	q := New(Limits{MaxBytes: 100, Overflow: DropOldest}, newClock().now)
	mustEnqueue(t, q, rel(0, 1, 30), rel(0, 2, 30), rel(0, 3, 30))
	q.Next(0, 0, 1, nil) // 1 is in flight: 30 bytes that cannot be dropped
	if err := q.Enqueue(rel(0, 4, 80)); !errors.Is(err, ErrBusy) {
		t.Fatalf("Enqueue = %v, want ErrBusy", err)
	}
	s := q.Stats()
	if s.Messages != 3 || s.Bytes != 90 || s.Dropped[DropOverflow] != 0 {
		t.Fatalf("a refused message cost %d drops: %+v", s.Dropped[DropOverflow], s)
	}
	// 70 bytes fit after dropping both unsent messages.
	mustEnqueue(t, q, rel(0, 5, 70))
	s = q.Stats()
	if s.Messages != 2 || s.Bytes != 100 || s.Dropped[DropOverflow] != 2 {
		t.Fatalf("after a fitting message: %+v", s)
	}
	// 40 bytes need only the oldest two of 4 (10 bytes each) dropped.
	q2 := New(Limits{MaxBytes: 40, Overflow: DropOldest}, newClock().now)
	mustEnqueue(t, q2, rel(0, 1, 10), rel(0, 2, 10), rel(0, 3, 10), rel(0, 4, 10))
	mustEnqueue(t, q2, rel(0, 5, 20))
	if got := tags(drain(q2, 0, 0)); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("held %v, want [3 4 5]", got)
	}
	checkInvariants(t, q)
	checkInvariants(t, q2)
}

func TestTTL(t *testing.T) {
	clk := newClock()
	q := New(Limits{}, clk.now)
	soon := rel(0, 1, 10)
	soon.Deadline = clk.now().Add(time.Second)
	later := rel(0, 2, 10)
	later.Deadline = clk.now().Add(time.Minute)
	forever := rel(0, 3, 10)
	mustEnqueue(t, q, soon, later, forever)
	clk.add(time.Second) // the deadline itself counts as expired
	got := q.Next(0, 0, 10, nil)
	if !slices.Equal(tags(got), []uint64{2, 3}) {
		t.Fatalf("Next %v, want [2 3]", tags(got))
	}
	s := q.Stats()
	if s.Dropped[DropExpired] != 1 || s.Messages != 2 || s.Bytes != 20 || s.Sent != 2 {
		t.Fatalf("after TTL: %+v", s)
	}
	checkInvariants(t, q)

	// TTL holds for redeliveries too, but the link writer that got the
	// message before keeps an intact payload.
	clk.add(time.Minute)
	gen := q.Rewind()
	if got := tags(drain(q, gen, 0)); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("redelivered %v, want [3]", got)
	}
	if !bytes.Equal(got[0].Payload, bytes.Repeat([]byte{2}, 10)) {
		t.Fatalf("payload of a handed-out message changed when it expired: %v", got[0].Payload)
	}
	if s := q.Stats(); s.Dropped[DropExpired] != 2 || s.Messages != 1 || s.Bytes != 10 {
		t.Fatalf("after redelivery TTL: %+v", s)
	}
	checkInvariants(t, q)
}

func TestEnqueueExpired(t *testing.T) {
	clk := newClock()
	q := New(Limits{}, clk.now)
	for _, d := range []time.Duration{0, -time.Nanosecond, -time.Hour} {
		m := rel(0, 1, 1)
		m.Deadline = clk.now().Add(d)
		if err := q.Enqueue(m); !errors.Is(err, ErrExpired) {
			t.Fatalf("deadline now%+v: Enqueue = %v, want ErrExpired", d, err)
		}
	}
	m := rel(0, 2, 1)
	m.Deadline = clk.now().Add(time.Nanosecond)
	mustEnqueue(t, q, m)
	if m.Seq != 1 {
		t.Fatalf("Seq %d: expired messages used sequence numbers", m.Seq)
	}
	if s := q.Stats(); s.Messages != 1 || s.Enqueued != 1 || s.Dropped[DropExpired] != 3 {
		t.Fatalf("%+v", s)
	}
}

func TestMaxAgeAtNext(t *testing.T) {
	clk := newClock()
	q := New(Limits{MaxAge: time.Minute}, clk.now)
	mustEnqueue(t, q, rel(0, 1, 1), rel(0, 2, 1))
	clk.add(30 * time.Second)
	mustEnqueue(t, q, rel(0, 3, 1), rel(1, 4, 1))
	clk.add(30 * time.Second) // 1, 2 are exactly MaxAge old
	if got := tags(q.Next(0, 0, 10, nil)); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("Next %v, want [3]", got)
	}
	if s := q.Stats(); s.Dropped[DropMaxAge] != 2 || s.Messages != 2 {
		t.Fatalf("%+v", s)
	}
	// A message sent once is not discarded by age on redelivery.
	clk.add(time.Hour)
	gen := q.Rewind()
	if got := tags(drain(q, gen, 0)); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("redelivery %v, want [3]", got)
	}
	// But the never-sent high lane message is.
	if got := q.Next(gen, 1, 10, nil); len(got) != 0 {
		t.Fatalf("old high-lane message handed out: %v", tags(got))
	}
	if s := q.Stats(); s.Dropped[DropMaxAge] != 3 || s.Messages != 1 || s.Redelivered != 1 {
		t.Fatalf("%+v", s)
	}
	checkInvariants(t, q)
}

func TestMaxAgeMakesRoomAtEnqueue(t *testing.T) {
	clk := newClock()
	q := New(Limits{MaxAge: time.Minute, MaxMessages: 3}, clk.now) // Reject
	mustEnqueue(t, q, rel(0, 1, 1), rel(1, 2, 1))
	clk.add(40 * time.Second)
	mustEnqueue(t, q, rel(0, 3, 1))
	clk.add(20 * time.Second) // 1 and 2 are MaxAge old, 3 is not
	mustEnqueue(t, q, rel(0, 4, 1))
	s := q.Stats()
	if s.Dropped[DropMaxAge] != 2 || s.Rejected != 0 || s.Messages != 2 {
		t.Fatalf("%+v", s)
	}
	mustEnqueue(t, q, rel(0, 5, 1))
	if err := q.Enqueue(rel(0, 6, 1)); !errors.Is(err, ErrBusy) {
		t.Fatalf("Enqueue with only young messages = %v, want ErrBusy", err)
	}
	if got := tags(drain(q, 0, 0)); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("held %v", got)
	}
	checkInvariants(t, q)
}

// A message handed out once and awaiting its ack is not "unsent": a full
// queue must not discard it by age after a reconnect either.
func TestMaxAgeAtEnqueueSparesResent(t *testing.T) {
	clk := newClock()
	q := New(Limits{MaxAge: time.Minute, MaxMessages: 2}, clk.now)
	mustEnqueue(t, q, rel(0, 1, 1), rel(0, 2, 1))
	q.Next(0, 0, 10, nil)
	clk.add(time.Hour)
	gen := q.Rewind()
	if err := q.Enqueue(rel(0, 3, 1)); !errors.Is(err, ErrBusy) {
		t.Fatalf("Enqueue = %v, want ErrBusy", err)
	}
	if got := tags(drain(q, gen, 0)); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("redelivered %v, want [1 2]", got)
	}
	if s := q.Stats(); s.Dropped[DropMaxAge] != 0 {
		t.Fatalf("%+v", s)
	}
}

func TestStats(t *testing.T) {
	clk := newClock()
	q := New(Limits{}, clk.now)
	if s := q.Stats(); s.Messages != 0 || s.OldestAge != 0 || s.Dropped == nil {
		t.Fatalf("empty: %+v", s)
	}
	mustEnqueue(t, q, rel(1, 1, 100))
	clk.add(5 * time.Second)
	mustEnqueue(t, q, rel(0, 2, 10), rel(0, 3, 20), amo(0, 4, 40))
	clk.add(3 * time.Second)
	q.Next(0, 0, 1, nil)
	s := q.Stats()
	want := Stats{Messages: 4, Bytes: 170, Unsent: 3, OldestAge: 8 * time.Second, Enqueued: 4, Sent: 1}
	if s.Messages != want.Messages || s.Bytes != want.Bytes || s.Unsent != want.Unsent || s.OldestAge != want.OldestAge || s.Enqueued != want.Enqueued || s.Sent != want.Sent {
		t.Fatalf("Stats = %+v\nwant %+v", s, want)
	}
	// The oldest (high lane) message leaves: the oldest is now 3s old.
	q.Next(0, 1, 1, nil)
	if err := q.Ack(1, 1); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.OldestAge != 3*time.Second || s.Messages != 3 || s.Unsent != 2 {
		t.Fatalf("after ack: %+v", s)
	}
	// The returned Dropped map is a copy.
	s = q.Stats()
	s.Dropped[DropOverflow] = 42
	if q.Stats().Dropped[DropOverflow] != 0 {
		t.Fatal("Stats().Dropped aliases the queue's map")
	}
}

func TestDiscard(t *testing.T) {
	q := New(Limits{}, newClock().now)
	mustEnqueue(t, q, rel(0, 1, 5), rel(0, 2, 5), amo(0, 3, 5), rel(1, 4, 5))
	q.Next(0, 0, 1, nil)
	if n := q.Discard(); n != 4 {
		t.Fatalf("Discard = %d, want 4", n)
	}
	s := q.Stats()
	if s.Messages != 0 || s.Bytes != 0 || s.Unsent != 0 || s.OldestAge != 0 || s.Dropped[DropReset] != 4 {
		t.Fatalf("after Discard: %+v", s)
	}
	gen := q.Rewind()
	for ln := range NumLanes {
		if got := q.Next(gen, ln, 10, nil); len(got) != 0 {
			t.Fatalf("lane %d after Discard: %v", ln, tags(got))
		}
	}
	checkInvariants(t, q)
	// Sequence numbers go on: the peer must not mistake new for old.
	m := rel(0, 5, 1)
	mustEnqueue(t, q, m)
	if m.Seq != 3 {
		t.Fatalf("Seq after Discard = %d, want 3", m.Seq)
	}
	if n := q.Discard(); n != 1 {
		t.Fatalf("second Discard = %d", n)
	}
	if n := q.Discard(); n != 0 {
		t.Fatalf("empty Discard = %d", n)
	}
	if s := q.Stats(); s.Dropped[DropReset] != 5 {
		t.Fatalf("%+v", s)
	}
}

// Take hands over every live message, normal lane first, in order, and
// leaves the queue as Discard does, counted as taken.
func TestTake(t *testing.T) {
	q := New(Limits{}, newClock().now)
	mustEnqueue(t, q, rel(1, 9, 5), rel(0, 1, 5), rel(0, 2, 5), amo(0, 3, 5))
	q.Next(0, 0, 1, nil) // the first is in flight: it is taken too
	var got []uint64
	if n := q.Take(func(m *Message) { got = append(got, m.To) }); n != 4 {
		t.Fatalf("Take = %d, want 4", n)
	}
	if fmt.Sprint(got) != "[1 2 3 9]" {
		t.Fatalf("taken %v, want [1 2 3 9]", got)
	}
	s := q.Stats()
	if s.Messages != 0 || s.Bytes != 0 || s.Dropped[DropTaken] != 4 || s.Dropped[DropReset] != 0 {
		t.Fatalf("after Take: %+v", s)
	}
	checkInvariants(t, q)
}

func TestNotifyPerLane(t *testing.T) {
	q := New(Limits{}, newClock().now)
	ready := func(ln int) bool {
		select {
		case <-q.Notify(ln):
			return true
		default:
			return false
		}
	}
	if ready(0) || ready(1) {
		t.Fatal("a new queue has a pending wake-up")
	}
	mustEnqueue(t, q, rel(1, 1, 1))
	if ready(0) {
		t.Fatal("lane 0 woken by a lane 1 message")
	}
	if !ready(1) {
		t.Fatal("lane 1 not woken")
	}
	mustEnqueue(t, q, rel(0, 2, 1), rel(0, 3, 1)) // wake-ups merge
	if !ready(0) || ready(0) || ready(1) {
		t.Fatal("want exactly one wake-up on lane 0")
	}
	q2 := New(Limits{MaxMessages: 1}, nil)
	mustEnqueue(t, q2, rel(0, 1, 1))
	<-q2.Notify(0)
	if err := q2.Enqueue(rel(0, 2, 1)); !errors.Is(err, ErrBusy) {
		t.Fatal(err)
	}
	select {
	case <-q2.Notify(0):
		t.Fatal("a rejected message woke the lane")
	default:
	}
}

// Tombstones must not accumulate when the link never takes messages and
// drop-oldest replaces the queue's content over and over.
func TestTombstonesBoundedDropOldest(t *testing.T) {
	const limit, total = 100, 100_000
	q := New(Limits{MaxMessages: limit, Overflow: DropOldest}, newClock().now)
	maxLen := 0
	for i := range total {
		mustEnqueue(t, q, rel(0, uint64(i), 8))
		maxLen = max(maxLen, len(q.lanes[0].msgs), cap(q.lanes[0].msgs)/4)
	}
	if maxLen > 3*limit {
		t.Fatalf("lane slice grew to %d for %d held messages", maxLen, limit)
	}
	s := q.Stats()
	if s.Messages != limit || s.Bytes != 8*limit || s.Dropped[DropOverflow] != total-limit {
		t.Fatalf("%+v", s)
	}
	checkInvariants(t, q)
	got := drain(q, 0, 0)
	if len(got) != limit || got[0].Seq != total-limit+1 || got[limit-1].Seq != total {
		t.Fatalf("held %d messages, seqs %d..%d", len(got), got[0].Seq, got[len(got)-1].Seq)
	}
}

// At-most-once messages that pass behind an unacked reliable message leave
// tombstones; they must be compacted too.
func TestTombstonesBoundedAtMostOnce(t *testing.T) {
	q := New(Limits{}, newClock().now)
	mustEnqueue(t, q, rel(0, 0, 1))
	q.Next(0, 0, 1, nil) // never acked
	buf := make([]*Message, 0, 8)
	maxLen := 0
	for i := range 10_000 {
		mustEnqueue(t, q, amo(0, uint64(i+1), 1))
		buf = q.Next(0, 0, 8, buf[:0])
		if len(buf) != 1 {
			t.Fatalf("Next = %d messages", len(buf))
		}
		maxLen = max(maxLen, len(q.lanes[0].msgs))
		if i%1000 == 0 {
			checkInvariants(t, q)
		}
	}
	if maxLen > 200 {
		t.Fatalf("lane slice grew to %d holding one message", maxLen)
	}
	if err := q.Ack(0, 1); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, q)
	if s := q.Stats(); s.Messages != 0 || s.Sent != 10_001 {
		t.Fatalf("%+v", s)
	}
}

func TestTombstonesTTLCompaction(t *testing.T) {
	clk := newClock()
	q := New(Limits{}, clk.now)
	for i := range 1000 {
		m := rel(0, uint64(i), 1)
		if i%10 != 0 {
			m.Deadline = clk.now().Add(time.Second)
		}
		mustEnqueue(t, q, m)
	}
	q.Next(0, 0, 5, nil)
	clk.add(time.Second)
	got := drain(q, 0, 0) // tags 10, 20, ..., 990
	if len(got) != 99 || got[0].To != 10 {
		t.Fatalf("handed out %d, want 99", len(got))
	}
	checkInvariants(t, q)
	if n := len(q.lanes[0].msgs); n > 300 {
		t.Fatalf("lane holds %d slots for 104 messages", n)
	}
	// 1..4 were handed out before their TTL ran out; it holds on redelivery.
	gen := q.Rewind()
	if got := drain(q, gen, 0); len(got) != 100 || got[0].To != 0 || got[1].To != 10 {
		t.Fatalf("redelivered %d: %v", len(got), tags(got))
	}
	if s := q.Stats(); s.Dropped[DropExpired] != 900 || s.Messages != 100 {
		t.Fatalf("%+v", s)
	}
	checkInvariants(t, q)
}

// Producers on 8 goroutines, one consumer per lane doing Next + Ack: every
// message arrives exactly once, in seq order, and in each producer's order.
func TestConcurrentEnqueueNextAck(t *testing.T) {
	const producers, perProducer = 8, 2000
	q := New(Limits{MaxMessages: 500}, nil) // small: producers see ErrBusy and retry
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				m := &Message{Lane: seqLanes[i%len(seqLanes)], From: uint64(p), To: uint64(i), Payload: binary.LittleEndian.AppendUint64(nil, uint64(p)<<32|uint64(i))}
				for {
					err := q.Enqueue(m)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrBusy) {
						t.Errorf("Enqueue: %v", err)
						return
					}
					wgYield()
				}
			}
		})
	}
	type result struct {
		err  error
		seen int
	}
	results := make(chan result, len(seqLanes))
	for _, ln8 := range seqLanes {
		ln := int(ln8)
		go func() {
			want := producers * perProducer / len(seqLanes)
			last := make([]int, producers)
			for i := range last {
				last[i] = -1
			}
			var seq uint64
			batch := make([]*Message, 0, 64)
			n := 0
			for n < want {
				batch = q.Next(0, ln, 64, batch[:0])
				if len(batch) == 0 {
					select {
					case <-q.Notify(ln):
					case <-time.After(10 * time.Second): // a hang becomes a failure
						results <- result{fmt.Errorf("lane %d: no wake-up with %d of %d messages received", ln, n, want), n}
						return
					}
					continue
				}
				for _, m := range batch {
					seq++
					if m.Seq != seq {
						results <- result{fmt.Errorf("lane %d: seq %d, want %d", ln, m.Seq, seq), n}
						return
					}
					v := binary.LittleEndian.Uint64(m.Payload)
					p, i := int(v>>32), int(uint32(v))
					if int(m.Lane) != ln || int(seqLanes[i%len(seqLanes)]) != ln || i <= last[p] {
						results <- result{fmt.Errorf("lane %d: producer %d message %d after %d", ln, p, i, last[p]), n}
						return
					}
					last[p] = i
					n++
				}
				if err := q.Ack(ln, seq); err != nil {
					results <- result{err, n}
					return
				}
			}
			results <- result{nil, n}
		}()
	}
	wg.Wait()
	for range seqLanes {
		if r := <-results; r.err != nil {
			t.Fatal(r.err)
		}
	}
	s := q.Stats()
	if s.Messages != 0 || s.Enqueued != producers*perProducer || s.Acked != producers*perProducer || s.Sent != producers*perProducer || s.Redelivered != 0 {
		t.Fatalf("%+v", s)
	}
	checkInvariants(t, q)
}

func wgYield() { runtime.Gosched() }

// TestModel runs random operations against a model of the queue.
func TestModel(t *testing.T) {
	for name, pol := range map[string]Policy{"reject": Reject, "drop-oldest": DropOldest} {
		for seed := range uint64(40) {
			t.Run(fmt.Sprintf("%s/%d", name, seed), func(t *testing.T) { runModel(t, pol, seed) })
		}
	}
}

type modelMsg struct {
	lane     int
	seq      uint64
	amo      bool
	handed   int  // times handed out
	rejected bool // ErrBusy: never accepted
}

func runModel(t *testing.T, pol Policy, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	q := New(Limits{MaxMessages: 1 + rng.IntN(20), MaxBytes: 40 + rng.Int64N(200), Overflow: pol}, newClock().now)
	var (
		msgs       []*modelMsg // by tag (Message.To)
		ackedTo    [NumLanes]uint64
		maxHanded  [NumLanes]uint64
		lastInPass [NumLanes]int // tag of the last message handed out in this pass
		gen        uint64
		busy       int
		handouts   int
	)
	for i := range lastInPass {
		lastInPass[i] = -1
	}
	next := func(g uint64, ln int) []*Message {
		got := q.Next(g, ln, 1+rng.IntN(5), nil)
		for _, m := range got {
			mm := msgs[m.To]
			tag := int(m.To)
			switch {
			case mm.lane != ln:
				t.Fatalf("lane %d handed out tag %d of lane %d", ln, tag, mm.lane)
			case tag <= lastInPass[ln]:
				t.Fatalf("lane %d handed out tag %d after %d in one pass", ln, tag, lastInPass[ln])
			case mm.amo && mm.handed > 0:
				t.Fatalf("at-most-once tag %d handed out twice", tag)
			case !mm.amo && m.Seq <= ackedTo[ln]:
				t.Fatalf("lane %d: seq %d handed out after ack %d", ln, m.Seq, ackedTo[ln])
			case m.Seq != mm.seq:
				t.Fatalf("tag %d: seq %d, was %d", tag, m.Seq, mm.seq)
			}
			lastInPass[ln] = tag
			mm.handed++
			handouts++
			if !mm.amo {
				maxHanded[ln] = max(maxHanded[ln], m.Seq)
			}
		}
		return got
	}
	for range 400 {
		switch op := rng.IntN(20); {
		case op < 8: // Enqueue
			ln := int(seqLanes[rng.IntN(len(seqLanes))])
			tag := uint64(len(msgs))
			m := rel(uint8(ln), tag, rng.IntN(30))
			if rng.IntN(5) == 0 {
				m.Flags = flagAtMostOnce
			}
			err := q.Enqueue(m)
			switch {
			case errors.Is(err, ErrBusy):
				busy++
				msgs = append(msgs, &modelMsg{lane: ln, rejected: true})
			case err != nil:
				t.Fatal(err)
			default:
				msgs = append(msgs, &modelMsg{lane: ln, seq: m.Seq, amo: m.AtMostOnce()})
			}
		case op < 13:
			next(gen, int(seqLanes[rng.IntN(len(seqLanes))]))
		case op < 14: // a writer of a replaced link
			if gen > 0 {
				if got := q.Next(gen-1, rng.IntN(NumLanes), 10, nil); len(got) != 0 {
					t.Fatalf("stale generation got %v", tags(got))
				}
			}
		case op < 18: // Ack a random prefix of what was handed out
			ln := int(seqLanes[rng.IntN(len(seqLanes))])
			if maxHanded[ln] > ackedTo[ln] {
				s := ackedTo[ln] + 1 + rng.Uint64N(maxHanded[ln]-ackedTo[ln])
				if err := q.Ack(ln, s); err != nil {
					t.Fatal(err)
				}
				ackedTo[ln] = s
			}
		default:
			gen = q.Rewind()
			for i := range lastInPass {
				lastInPass[i] = -1
			}
		}
		checkInvariants(t, q)
	}
	// Final reconnect and drain: everything accepted, not acked and not
	// dropped comes out, in order.
	gen = q.Rewind()
	for i := range lastInPass {
		lastInPass[i] = -1
	}
	final := map[uint64]bool{}
	for ln := range NumLanes {
		for {
			got := next(gen, ln)
			if len(got) == 0 {
				break
			}
			for _, m := range got {
				final[m.To] = true
			}
		}
	}
	s := q.Stats()
	accepted, neverHanded := 0, 0
	for tag, mm := range msgs {
		if mm.rejected {
			continue
		}
		accepted++
		if mm.handed == 0 {
			neverHanded++
		}
		acked := !mm.amo && mm.seq <= ackedTo[mm.lane]
		if pol == Reject {
			if mm.handed == 0 {
				t.Errorf("tag %d (lane %d seq %d) accepted but never handed out", tag, mm.lane, mm.seq)
			}
			if !mm.amo && !acked && !final[uint64(tag)] {
				t.Errorf("tag %d (lane %d seq %d) unacked but not redelivered", tag, mm.lane, mm.seq)
			}
		}
	}
	if pol == Reject && s.Dropped[DropOverflow] != 0 {
		t.Errorf("Reject dropped %d", s.Dropped[DropOverflow])
	}
	if uint64(neverHanded) != s.Dropped[DropOverflow] {
		t.Errorf("%d accepted messages never handed out, %d dropped", neverHanded, s.Dropped[DropOverflow])
	}
	distinct := accepted - neverHanded
	if s.Enqueued != uint64(accepted) || s.Rejected != uint64(busy) || s.Sent != uint64(distinct) || s.Redelivered != uint64(handouts-distinct) {
		t.Errorf("Stats %+v; model accepted %d busy %d distinct %d handouts %d", s, accepted, busy, distinct, handouts)
	}
	// Acking everything empties the queue.
	for ln := range NumLanes {
		if maxHanded[ln] > 0 {
			if err := q.Ack(ln, maxHanded[ln]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s := q.Stats(); s.Messages != 0 || s.Bytes != 0 {
		t.Errorf("after acking everything: %+v", s)
	}
	checkInvariants(t, q)
}

func BenchmarkEnqueueNext(b *testing.B) {
	q := New(Limits{}, nil)
	payload := make([]byte, 128)
	const batch = 64
	pool := make([]Message, batch)
	out := make([]*Message, 0, batch)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	i := 0
	for b.Loop() {
		m := &pool[i%batch]
		*m = Message{Lane: LaneNormal, To: 1, Payload: payload}
		if err := q.Enqueue(m); err != nil {
			b.Fatal(err)
		}
		i++
		if i%batch == 0 {
			out = q.Next(0, LaneNormal, batch, out[:0])
			if len(out) != batch {
				b.Fatalf("Next = %d", len(out))
			}
			if err := q.Ack(LaneNormal, out[batch-1].Seq); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Ready tells whether Next would hand out something now: per lane, for the
// current generation only, and again after a Rewind for what was handed out
// but not acknowledged.
func TestReady(t *testing.T) {
	q := New(Limits{}, newClock().now)
	if q.Ready(0, LaneNormal) || q.Ready(0, LaneHigh) {
		t.Fatal("empty queue Ready")
	}
	mustEnqueue(t, q, rel(LaneNormal, 1, 10))
	if !q.Ready(0, LaneNormal) || q.Ready(0, LaneHigh) || q.Ready(0, LaneDurable) {
		t.Fatal("one normal message: want only the normal lane Ready")
	}
	if q.Ready(1, LaneNormal) {
		t.Fatal("Ready for a generation that is not the current one")
	}
	if got := q.Next(0, LaneNormal, 10, nil); len(got) != 1 {
		t.Fatalf("Next: %d messages", len(got))
	}
	if q.Ready(0, LaneNormal) {
		t.Fatal("Ready with everything handed out")
	}
	gen := q.Rewind()
	if !q.Ready(gen, LaneNormal) || q.Ready(gen-1, LaneNormal) {
		t.Fatal("after Rewind: the unacknowledged message must make the lane Ready for the new generation only")
	}
	if err := q.Ack(LaneNormal, 1); err != nil {
		t.Fatal(err)
	}
	if q.Ready(gen, LaneNormal) {
		t.Fatal("Ready after the ack")
	}
	checkInvariants(t, q)
}

// EnqueueCopy keeps a copy of each accepted payload, small ones packed in a
// shared block, each capped at its length; the caller's buffer is free
// again at once.
func TestEnqueueCopy(t *testing.T) {
	q := New(Limits{}, newClock().now)
	buf := make([]byte, slabMax+1)
	var want [][]byte
	for i, n := range []int{1, 128, slabMax, slabMax + 1, 0, 300} {
		for k := range buf[:n] {
			buf[k] = byte(i + 1)
		}
		m := Message{Lane: LaneNormal, From: uint64(i), Payload: buf[:n]}
		if err := q.EnqueueCopy(&m, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if m.Seq != 0 || len(m.Payload) != n || n > 0 && &m.Payload[0] != &buf[0] {
			t.Fatalf("message %d: the caller's message was changed", i)
		}
		want = append(want, bytes.Repeat([]byte{byte(i + 1)}, n))
		m = Message{} // the caller reuses its message
		clear(buf)    // and its buffer
	}
	got := q.Next(0, LaneNormal, 10, nil)
	if len(got) != len(want) {
		t.Fatalf("%d messages queued, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m.From != uint64(i) || m.Seq != uint64(i+1) {
			t.Errorf("message %d: From %d Seq %d, want %d and %d", i, m.From, m.Seq, i, i+1)
		}
		if !bytes.Equal(m.Payload, want[i]) {
			t.Errorf("payload %d changed: % x...", i, m.Payload[:min(len(m.Payload), 8)])
		}
		if cap(m.Payload) != len(m.Payload) {
			t.Errorf("payload %d: cap %d, want its length %d", i, cap(m.Payload), len(m.Payload))
		}
	}
	if s := q.Stats(); s.Bytes != int64(1+128+slabMax+slabMax+1+0+300) {
		t.Errorf("queued bytes %d: the payloads' sizes, not the blocks', count", s.Bytes)
	}
	// A refused message keeps the caller's payload.
	full := New(Limits{MaxMessages: 1}, newClock().now)
	mustEnqueue(t, full, rel(LaneNormal, 1, 1))
	m := &Message{Lane: LaneNormal, Payload: buf[:5]}
	if err := full.EnqueueCopy(m, time.Time{}); !errors.Is(err, ErrBusy) || &m.Payload[0] != &buf[0] {
		t.Fatalf("refused: %v", err)
	}
	checkInvariants(t, q)
}

// EnqueueCopyBatch queues a run of messages under one lock: consecutive
// Seqs, the template's fields, copied payloads; a full queue stops it at the
// first message refused, and an expired template queues nothing.
func TestEnqueueCopyBatch(t *testing.T) {
	clk := newClock()
	q := New(Limits{MaxMessages: 5}, clk.now)
	mustEnqueue(t, q, rel(LaneNormal, 1, 1)) // Seq 1
	buf := []byte("abcdefgh")
	payloads := func(yield func([]byte) bool) {
		for i := range 8 {
			if !yield(buf[i : i+1]) {
				return
			}
		}
	}
	tmpl := Message{Lane: LaneNormal, To: 7, From: 3, Group: "g"}
	n, err := q.EnqueueCopyBatch(&tmpl, payloads, clk.now())
	if n != 4 || !errors.Is(err, ErrBusy) {
		t.Fatalf("EnqueueCopyBatch into room for 4 of 8: %d, %v; want 4, ErrBusy", n, err)
	}
	if tmpl.Seq != 0 || tmpl.Payload != nil {
		t.Fatalf("the template was changed: %+v", tmpl)
	}
	clear(buf)
	got := q.Next(0, LaneNormal, 10, nil)
	if len(got) != 5 {
		t.Fatalf("%d messages queued, want 5", len(got))
	}
	for i, m := range got[1:] {
		if m.Seq != uint64(i+2) || m.To != 7 || m.From != 3 || m.Group != "g" || string(m.Payload) != string(rune('a'+i)) || !m.Enqueued.Equal(clk.now()) {
			t.Errorf("message %d: %+v", i, m)
		}
	}
	if s := q.Stats(); s.Rejected != 1 || s.Messages != 5 || s.Bytes != 5 {
		t.Errorf("stats %+v: want 1 rejected, 5 messages of 5 bytes", s)
	}
	expired := Message{Lane: LaneNormal, Deadline: clk.now()}
	if n, err := q.EnqueueCopyBatch(&expired, payloads, clk.now()); n != 0 || !errors.Is(err, ErrExpired) {
		t.Fatalf("expired template: %d, %v", n, err)
	}
	if n, err := q.EnqueueCopyBatch(&Message{Lane: NumLanes}, payloads, clk.now()); n != 0 || err == nil {
		t.Fatalf("bad lane: %d, %v", n, err)
	}
	checkInvariants(t, q)
}

// Blocks of messages that left the queue are reused, but not while a batch
// that Next handed out is not Done: the writer reading it sees its
// messages intact, even after they were acknowledged and new ones queued.
func TestBlocksRecycledOnlyAfterDone(t *testing.T) {
	clk := newClock()
	q := New(Limits{}, clk.now)
	enqueue := func(tag byte, n int) {
		for range n {
			m := Message{Lane: LaneNormal, To: uint64(tag), Payload: bytes.Repeat([]byte{tag}, 100)}
			if err := q.EnqueueCopy(&m, clk.now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	enqueue('a', 500) // several blocks of each kind
	held := q.Next(0, LaneNormal, 500, nil)
	if len(held) != 500 {
		t.Fatalf("Next: %d messages", len(held))
	}
	if err := q.Ack(LaneNormal, held[len(held)-1].Seq); err != nil {
		t.Fatal(err)
	}
	enqueue('b', 500) // would reuse the blocks of the 'a's if they were free
	for i, m := range held {
		if m.To != 'a' || !bytes.Equal(m.Payload, bytes.Repeat([]byte{'a'}, 100)) {
			t.Fatalf("held message %d changed before Done: To %d, payload %q...", i, m.To, m.Payload[:4])
		}
	}
	q.Done()
	// Now the 'b's go out and are acknowledged; the 'c's after them reuse
	// their blocks.
	got := q.Next(0, LaneNormal, 500, nil)
	q.Done()
	if err := q.Ack(LaneNormal, got[len(got)-1].Seq); err != nil {
		t.Fatal(err)
	}
	enqueue('c', 500)
	for i, m := range q.Next(0, LaneNormal, 500, nil) {
		if m.To != 'c' || !bytes.Equal(m.Payload, bytes.Repeat([]byte{'c'}, 100)) {
			t.Fatalf("message %d in a reused block: To %d, payload %q...", i, m.To, m.Payload[:4])
		}
	}
	q.Done()
	checkInvariants(t, q)
}

// At steady state (queue, hand out, acknowledge) a queue allocates nothing
// per message: its blocks are reused, and its list of messages slides back
// in its array. (A call of EnqueueCopyBatch costs a few allocations of its
// own, for its iterator.)
func TestSteadyStateAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop blocks at random: allocation counts mean nothing")
	}
	const n = 640 // messages per cycle: 10 message blocks, 5 payload blocks
	clk := newClock()
	q := New(Limits{}, clk.now)
	payload := make([]byte, 128)
	payloads := func(yield func([]byte) bool) {
		for range n {
			if !yield(payload) {
				return
			}
		}
	}
	tmpl := Message{Lane: LaneNormal, To: 1}
	var batch []*Message
	cycle := func() {
		if _, err := q.EnqueueCopyBatch(&tmpl, payloads, clk.now()); err != nil {
			t.Fatal(err)
		}
		batch = q.Next(0, LaneNormal, n, batch[:0])
		q.Done()
		if err := q.Ack(LaneNormal, batch[len(batch)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		cycle() // warm up: blocks and the lane's array grow to their size
	}
	if a := testing.AllocsPerRun(200, cycle); a > 6 {
		t.Fatalf("%.1f allocations per %d messages queued, sent and acknowledged; want only the iterator's few", a, n)
	}
}

// A block whose messages have all left while it was still the lane's
// current block is freed once, when the lane moves on: freed twice, it
// would be handed to two queues at once and their messages would overwrite
// each other.
func TestFullBlockFreedOnce(t *testing.T) {
	clk := newClock()
	enqueue := func(q *Queue, tag byte, n int) {
		for range n {
			m := Message{Lane: LaneNormal, To: uint64(tag), Payload: []byte{tag}}
			if err := q.EnqueueCopy(&m, clk.now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := New(Limits{}, clk.now)
	enqueue(a, 'a', msgBlock) // exactly one full block
	got := a.Next(0, LaneNormal, msgBlock, nil)
	a.Done()
	if err := a.Ack(LaneNormal, got[len(got)-1].Seq); err != nil {
		t.Fatal(err)
	}
	enqueue(a, 'a', 1) // the lane moves on to a new block
	b, c := New(Limits{}, clk.now), New(Limits{}, clk.now)
	enqueue(b, 'b', msgBlock)
	enqueue(c, 'c', msgBlock)
	for _, x := range []struct {
		q     *Queue
		tag   byte
		first uint64
	}{{a, 'a', msgBlock + 1}, {b, 'b', 1}, {c, 'c', 1}} {
		for i, m := range x.q.Next(0, LaneNormal, msgBlock, nil) {
			if m.To != uint64(x.tag) || m.Seq != x.first+uint64(i) {
				t.Fatalf("queue %c, message %d: To %c, Seq %d: another queue's message", x.tag, i, rune(m.To), m.Seq)
			}
		}
	}
}

// A message's headers are copied with it (the caller's buffer is reused),
// count towards the queue's bytes, and leave with it.
func TestEnqueueCopyHeaders(t *testing.T) {
	q := New(Limits{MaxBytes: 100}, newClock().now)
	hdr := []byte("header-block")
	m := Message{Lane: LaneNormal, Payload: []byte("p"), Headers: hdr}
	if err := q.EnqueueCopy(&m, time.Time{}); err != nil {
		t.Fatal(err)
	}
	copy(hdr, "XXXXXXXXXXXX") // the caller reuses its buffer
	if s := q.Stats(); s.Bytes != int64(1+len(hdr)) {
		t.Fatalf("queued bytes %d, want the payload's and the headers' %d", s.Bytes, 1+len(hdr))
	}
	// Headers count towards MaxBytes.
	big := Message{Lane: LaneNormal, Payload: make([]byte, 80), Headers: make([]byte, 10)}
	if err := q.EnqueueCopy(&big, time.Time{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("a message over MaxBytes with its headers: %v, want ErrBusy", err)
	}
	got := q.Next(0, LaneNormal, 10, nil)
	if len(got) != 1 || string(got[0].Headers) != "header-block" {
		t.Fatalf("queued %+v, want the message with its headers as they were", got)
	}
	q.Ack(LaneNormal, got[0].Seq)
	if s := q.Stats(); s.Bytes != 0 || s.Messages != 0 {
		t.Fatalf("after the ack: %+v", s)
	}
}
