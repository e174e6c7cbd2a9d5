package payload

import (
	"sync"
	"time"
)

// Counts is a Checker's account of what arrived.
type Counts struct {
	Expected   int // messages sent (sequence numbers 0..Expected-1)
	Delivered  int // distinct expected sequence numbers received intact
	Duplicates int // a sequence number received again
	OutOfOrder int // received after a higher sequence number
	Corrupted  int // body did not match its CRC, or too short
	Unexpected int // sequence number outside 0..Expected-1
}

// Lost is what was sent and never delivered.
func (c Counts) Lost() int { return c.Expected - c.Delivered }

// Clean reports whether every message arrived once, intact.
func (c Counts) Clean() bool {
	return c.Lost() == 0 && c.Duplicates == 0 && c.Corrupted == 0 && c.Unexpected == 0
}

// Checker accounts for received payloads whose sequence numbers are
// 0..expected-1. Safe for concurrent use.
type Checker struct {
	mu      sync.Mutex
	seen    []uint64 // bitmap
	c       Counts
	maxSeq  uint64
	any     bool
	first   time.Time
	last    time.Time
	arrival func(seq uint64, at time.Time) // optional hook
	changed chan struct{}                  // capacity 1: poked on every delivery
}

// NewChecker returns a Checker expecting sequence numbers 0..expected-1.
func NewChecker(expected int) *Checker {
	return &Checker{seen: make([]uint64, (expected+63)/64), c: Counts{Expected: expected}, changed: make(chan struct{}, 1)}
}

// OnArrival sets a hook called (under the checker's lock) for each intact
// payload with its sequence number and arrival time. Set it before Add.
func (k *Checker) OnArrival(f func(seq uint64, at time.Time)) { k.arrival = f }

// SetExpected raises the number of messages sent (sequence numbers 0..n-1);
// for runs whose length is known only at their end.
func (k *Checker) SetExpected(n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if n <= k.c.Expected {
		return
	}
	for len(k.seen) < (n+63)/64 {
		k.seen = append(k.seen, 0)
	}
	k.c.Expected = n
}

// Add accounts for one received payload, arrived at now.
func (k *Checker) Add(p []byte, now time.Time) {
	k.add(p, now)
}

// clockEvery is how often AddSampled reads the clock, in deliveries.
const clockEvery = 64

// AddSampled is Add without a clock reading per payload, for throughput
// runs (a reading costs about as much as the rest of Add): it reads the
// clock for the first delivery, every clockEvery-th, and the one that
// completes the expected count, and gives the others the last time read.
// The last arrival time is so exact when every payload arrives, and at
// most clockEvery-1 deliveries early otherwise.
func (k *Checker) AddSampled(p []byte) {
	k.add(p, time.Time{})
}

func (k *Checker) add(p []byte, now time.Time) {
	h, err := Parse(p)
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.IsZero() { // AddSampled
		if n := k.c.Delivered; !k.any || n%clockEvery == clockEvery-1 || n+1 >= k.c.Expected {
			now = time.Now()
		} else {
			now = k.last
		}
	}
	switch {
	case err != nil: // too short or CRC mismatch
		k.c.Corrupted++
		return
	case h.Seq >= uint64(k.c.Expected):
		k.c.Unexpected++
		return
	}
	w, bit := h.Seq/64, uint64(1)<<(h.Seq%64)
	if k.seen[w]&bit != 0 {
		k.c.Duplicates++
		return
	}
	k.seen[w] |= bit
	if k.any && h.Seq < k.maxSeq {
		k.c.OutOfOrder++
	}
	if !k.any || h.Seq > k.maxSeq {
		k.maxSeq = h.Seq
	}
	if !k.any {
		k.first = now
	}
	k.any = true
	k.last = now
	k.c.Delivered++
	if k.arrival != nil {
		k.arrival(h.Seq, now)
	}
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

// Counts returns the account so far.
func (k *Checker) Counts() Counts {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.c
}

// Times returns the arrival times of the first and the last delivery (zero before any).
func (k *Checker) Times() (first, last time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.first, k.last
}

// WaitAll waits until every expected message was delivered, no delivery
// came for idle, or the deadline passed; it returns the counts then.
func (k *Checker) WaitAll(idle time.Duration, deadline time.Time) Counts {
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		c := k.Counts()
		if c.Delivered >= c.Expected || !time.Now().Before(deadline) {
			return c
		}
		wait := min(idle, time.Until(deadline))
		t.Reset(wait)
		select {
		case <-k.changed:
		case <-t.C:
			if wait == idle {
				return k.Counts()
			}
		}
	}
}
