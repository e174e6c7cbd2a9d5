package impair

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Direction names one or both directions of a path. Forward is from the
// side that opened the path (the relay's client, or the forward prefix of a
// packet forwarder) to the other side; Backward is the answer.
type Direction uint8

// Directions of a path.
const (
	Forward  Direction = 1 << iota // client to target
	Backward                       // target to client
	Both     = Forward | Backward
)

func (d Direction) String() string {
	switch d {
	case Forward:
		return "forward"
	case Backward:
		return "backward"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Faults are the impairments of one direction of a path, as netem would
// apply them. The zero value forwards everything at once.
type Faults struct {
	// Blackhole drops every packet silently (no FIN, no RST, no ICMP). A
	// stream relay cannot drop bytes it read without breaking the stream:
	// it holds them instead, forwarding nothing until the blackhole ends.
	Blackhole bool
	// Loss is the share of packets dropped, 0 to 1 (packet paths only).
	Loss float64
	// Delay is added to every packet (every chunk on a stream).
	Delay time.Duration
	// Jitter varies the delay uniformly within Delay ± Jitter. Packets may
	// then overtake each other, as with netem; a stream keeps its order.
	Jitter time.Duration
	// Reorder is the share of packets held back by ReorderGap on top of
	// their delay, so that later packets overtake them (packet paths only).
	Reorder float64
	// ReorderGap is how long a reordered packet is held back; 0 means 10 ms.
	ReorderGap time.Duration
	// Duplicate is the share of packets sent twice (packet paths only).
	Duplicate float64
	// Corrupt is the share of packets (chunks on a stream) with one byte
	// changed. The packet forwarder corrects the UDP or TCP checksum, so
	// the damage reaches the application's own integrity checks.
	Corrupt float64
	// Rate caps the direction at this many bits per second (0: no cap).
	// Packets wait for their turn; on packet paths one that would wait
	// longer than QueueLimit is dropped (tail drop, like tbf's latency).
	Rate int64
	// QueueLimit bounds the wait for the rate cap; 0 means 200 ms.
	QueueLimit time.Duration
}

// Validate reports the first field out of range.
func (f Faults) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"Loss", f.Loss}, {"Reorder", f.Reorder}, {"Duplicate", f.Duplicate}, {"Corrupt", f.Corrupt}} {
		if p.v < 0 || p.v > 1 {
			return fmt.Errorf("%w: %s %v is not a share between 0 and 1", ErrBadFaults, p.name, p.v)
		}
	}
	if f.Delay < 0 || f.Jitter < 0 || f.ReorderGap < 0 || f.QueueLimit < 0 {
		return fmt.Errorf("%w: negative duration (Delay %v, Jitter %v, ReorderGap %v, QueueLimit %v)", ErrBadFaults, f.Delay, f.Jitter, f.ReorderGap, f.QueueLimit)
	}
	if f.Rate < 0 {
		return fmt.Errorf("%w: negative Rate %d", ErrBadFaults, f.Rate)
	}
	return nil
}

// Stats count what one direction of a path did. Every applied fault is
// counted, so a test can show that it really happened.
type Stats struct {
	Packets     uint64        // packets (chunks on a stream) that entered
	Bytes       uint64        // their bytes
	Forwarded   uint64        // packets written out, duplicates included
	Blackholed  uint64        // dropped (or, on a stream, held) by Blackhole
	Lost        uint64        // dropped by Loss
	QueueDrops  uint64        // dropped because the rate queue was over QueueLimit
	Duplicated  uint64        // extra copies sent
	Corrupted   uint64        // packets with a byte changed
	Delayed     uint64        // packets sent later than they arrived (Delay, Jitter, Reorder or Rate)
	Reordered   uint64        // packets held back by Reorder
	DelayTotal  time.Duration // sum of the delays applied
	RateLimited uint64        // packets that waited for the rate cap
}

// MeanDelay is the mean delay applied to the delayed packets.
func (s Stats) MeanDelay() time.Duration {
	if s.Delayed == 0 {
		return 0
	}
	return s.DelayTotal / time.Duration(s.Delayed)
}

// Add returns the sum of two Stats.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Packets: s.Packets + o.Packets, Bytes: s.Bytes + o.Bytes, Forwarded: s.Forwarded + o.Forwarded,
		Blackholed: s.Blackholed + o.Blackholed, Lost: s.Lost + o.Lost, QueueDrops: s.QueueDrops + o.QueueDrops,
		Duplicated: s.Duplicated + o.Duplicated, Corrupted: s.Corrupted + o.Corrupted, Delayed: s.Delayed + o.Delayed,
		Reordered: s.Reordered + o.Reordered, DelayTotal: s.DelayTotal + o.DelayTotal, RateLimited: s.RateLimited + o.RateLimited,
	}
}

// counters are a Stats updated concurrently.
type counters struct {
	packets, bytes, forwarded, blackholed, lost, queueDrops atomic.Uint64
	duplicated, corrupted, delayed, reordered, rateLimited  atomic.Uint64
	delayTotal                                              atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(), Forwarded: c.forwarded.Load(), Blackholed: c.blackholed.Load(),
		Lost: c.lost.Load(), QueueDrops: c.queueDrops.Load(), Duplicated: c.duplicated.Load(), Corrupted: c.corrupted.Load(),
		Delayed: c.delayed.Load(), Reordered: c.reordered.Load(), DelayTotal: time.Duration(c.delayTotal.Load()),
		RateLimited: c.rateLimited.Load(),
	}
}

// verdict is what a shaper decided for one packet.
type verdict struct {
	copies  int       // 0 dropped (or held, on a stream), 1, or 2 (duplicated)
	at      time.Time // when to write it
	corrupt bool      // change one byte
}

// shaper applies one direction's Faults to packets and counts them.
type shaper struct {
	mu       sync.Mutex
	f        Faults
	nextFree time.Time // rate cap: when the link is free again
	changed  chan struct{}

	c counters
}

func newShaper() *shaper { return &shaper{changed: make(chan struct{})} }

func (s *shaper) set(f Faults) {
	s.mu.Lock()
	s.f = f
	close(s.changed) // wakes streams held by a blackhole
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *shaper) faults() (Faults, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f, s.changed
}

// admit decides the fate of one packet of n bytes arriving now. stream
// paths (which cannot lose, duplicate or reorder bytes) pass stream=true;
// for them a blackhole returns copies 0, uncounted, and the caller holds
// the data until the blackhole ends. Only a corruptible packet is corrupted.
func (s *shaper) admit(now time.Time, n int, stream, corruptible bool) verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.f
	if f.Blackhole && stream {
		return verdict{} // the caller holds the data and counts it
	}
	s.c.packets.Add(1)
	s.c.bytes.Add(uint64(n))
	if f.Blackhole {
		s.c.blackholed.Add(1)
		return verdict{}
	}
	if !stream && f.Loss > 0 && rand.Float64() < f.Loss {
		s.c.lost.Add(1)
		return verdict{}
	}
	at := now
	if f.Rate > 0 {
		start := now
		if s.nextFree.After(now) {
			start = s.nextFree
		}
		limit := f.QueueLimit
		if limit == 0 {
			limit = 200 * time.Millisecond
		}
		if !stream && start.Sub(now) > limit {
			s.c.queueDrops.Add(1)
			return verdict{}
		}
		s.nextFree = start.Add(time.Duration(int64(n) * 8 * int64(time.Second) / f.Rate))
		if s.nextFree.After(now) {
			s.c.rateLimited.Add(1)
		}
		at = s.nextFree
	}
	d := f.Delay
	if f.Jitter > 0 {
		d += time.Duration(rand.Int64N(2*int64(f.Jitter)+1)) - f.Jitter
		d = max(d, 0)
	}
	if !stream && f.Reorder > 0 && rand.Float64() < f.Reorder {
		gap := f.ReorderGap
		if gap == 0 {
			gap = 10 * time.Millisecond
		}
		d += gap
		s.c.reordered.Add(1)
	}
	at = at.Add(d)
	if wait := at.Sub(now); wait > 0 {
		s.c.delayed.Add(1)
		s.c.delayTotal.Add(int64(wait))
	}
	v := verdict{copies: 1, at: at}
	if !stream && f.Duplicate > 0 && rand.Float64() < f.Duplicate {
		v.copies = 2
		s.c.duplicated.Add(1)
	}
	if corruptible && f.Corrupt > 0 && rand.Float64() < f.Corrupt {
		v.corrupt = true
		s.c.corrupted.Add(1)
	}
	return v
}

// corrupt changes one byte of b, at or after offset from (when b is longer).
func corrupt(b []byte, from int) {
	if len(b) == 0 {
		return
	}
	if from >= len(b) {
		from = 0
	}
	i := from + rand.IntN(len(b)-from)
	b[i] ^= byte(1 + rand.IntN(255))
}

// pathFaults holds the two shapers of a path.
type pathFaults struct {
	fwd, bwd *shaper
}

func newPathFaults() pathFaults { return pathFaults{fwd: newShaper(), bwd: newShaper()} }

func (p pathFaults) set(dir Direction, f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if dir&^Both != 0 || dir == 0 {
		return fmt.Errorf("%w: direction %v", ErrBadFaults, dir)
	}
	if dir&Forward != 0 {
		p.fwd.set(f)
	}
	if dir&Backward != 0 {
		p.bwd.set(f)
	}
	return nil
}

// update changes the faults of dir with fn (both shapers separately).
func (p pathFaults) update(dir Direction, fn func(*Faults)) {
	for _, s := range []struct {
		d  Direction
		sh *shaper
	}{{Forward, p.fwd}, {Backward, p.bwd}} {
		if dir&s.d != 0 {
			f, _ := s.sh.faults()
			fn(&f)
			s.sh.set(f)
		}
	}
}

func (p pathFaults) stats(dir Direction) Stats {
	var s Stats
	if dir&Forward != 0 {
		s = s.Add(p.fwd.c.snapshot())
	}
	if dir&Backward != 0 {
		s = s.Add(p.bwd.c.snapshot())
	}
	return s
}

func (p pathFaults) shaper(dir Direction) *shaper {
	if dir == Forward {
		return p.fwd
	}
	return p.bwd
}
