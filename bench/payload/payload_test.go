package payload

import (
	"errors"
	"testing"
	"time"
)

func TestParseRoundTrip(t *testing.T) {
	b, err := NewBuilder(128)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 123456789)
	p := b.Append(nil, 42, at)
	if len(p) != 128 {
		t.Fatalf("payload is %d bytes, want 128", len(p))
	}
	h, err := Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != 42 || !h.At.Equal(at) {
		t.Fatalf("parsed %+v, want seq 42 at %v", h, at)
	}
	p[100] ^= 1
	if _, err := Parse(p); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped bit: err %v, want ErrCorrupt", err)
	}
	if _, err := Parse(p[:10]); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("short payload: err %v, want ErrTooSmall", err)
	}
	if _, err := NewBuilder(HeaderSize - 1); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("NewBuilder(%d): err %v, want ErrTooSmall", HeaderSize-1, err)
	}
}

func TestCheckerAccounts(t *testing.T) {
	b, _ := NewBuilder(64)
	k := NewChecker(10)
	now := time.Now()
	add := func(seq uint64) { k.Add(b.Append(nil, seq, now), now) }
	for _, s := range []uint64{0, 1, 3, 2, 3, 5, 12} { // 2 is late, 3 again, 12 unknown
		add(s)
	}
	bad := b.Append(nil, 6, now)
	bad[30] ^= 0xff
	k.Add(bad, now)
	k.Add([]byte("short"), now)
	got := k.Counts()
	want := Counts{Expected: 10, Delivered: 5, Duplicates: 1, OutOfOrder: 1, Corrupted: 2, Unexpected: 1}
	if got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	if got.Lost() != 5 || got.Clean() {
		t.Fatalf("lost %d clean %v, want 5 false", got.Lost(), got.Clean())
	}
	k.SetExpected(13)
	if c := k.Counts(); c.Expected != 13 || c.Lost() != 8 {
		t.Fatalf("after SetExpected(13): %+v", c)
	}
	add(12) // now expected
	if c := k.Counts(); c.Delivered != 6 {
		t.Fatalf("seq 12 after SetExpected: delivered %d, want 6", c.Delivered)
	}
}

func TestCheckerWaitAll(t *testing.T) {
	b, _ := NewBuilder(32)
	k := NewChecker(3)
	var arrived []uint64
	k.OnArrival(func(seq uint64, _ time.Time) { arrived = append(arrived, seq) })
	go func() {
		for s := range uint64(3) {
			k.Add(b.Append(nil, s, time.Now()), time.Now())
		}
	}()
	c := k.WaitAll(time.Minute, time.Now().Add(time.Minute))
	if !c.Clean() || c.Delivered != 3 {
		t.Fatalf("counts %+v, want all 3 delivered", c)
	}
	if len(arrived) != 3 {
		t.Fatalf("arrival hook saw %v", arrived)
	}
	// Nothing more comes: WaitAll returns after idle with what it has.
	k2 := NewChecker(2)
	if c := k2.WaitAll(10*time.Millisecond, time.Now().Add(time.Minute)); c.Delivered != 0 || c.Lost() != 2 {
		t.Fatalf("idle checker: %+v", c)
	}
}

// AddSampled counts like Add, and its first and last arrival times bracket
// the run: the last is read at the delivery that completes it.
func TestCheckerAddSampled(t *testing.T) {
	b, _ := NewBuilder(64)
	const n = 1000
	k := NewChecker(n)
	before := time.Now()
	for i := range n - 1 {
		k.AddSampled(b.Append(nil, uint64(i), before))
	}
	k.AddSampled(b.Append(nil, 3, before)) // a duplicate
	beforeLast := time.Now()
	k.AddSampled(b.Append(nil, n-1, before))
	after := time.Now()
	if c := k.Counts(); c.Delivered != n || c.Duplicates != 1 {
		t.Fatalf("counts %+v", c)
	}
	first, last := k.Times()
	if first.Before(before) || first.After(beforeLast) {
		t.Errorf("first arrival %v outside the run", first)
	}
	if last.Before(beforeLast) || last.After(after) {
		t.Errorf("last arrival %v, want the time of the last delivery (between %v and %v)", last, beforeLast, after)
	}
}
