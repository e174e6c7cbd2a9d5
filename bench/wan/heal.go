package wan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wandist/wandist/bench/payload"
	"github.com/wandist/wandist/bench/workload"
)

// HealOptions shape a blackout under a steady load: Size-byte messages at
// Offered payload bits/s (open loop, each at its intended time), Before
// the blackout, Blackout long, then up to After more.
type HealOptions struct {
	Size     int
	Offered  float64 // payload bits/s
	Link     float64 // the link rate, bits/s (for the ideal)
	Before   time.Duration
	Blackout time.Duration
	After    time.Duration
	Cut      func(on bool) error // blackholes and heals the path
}

// HealResult is what happened after the heal (times from the heal; -1:
// never within the run).
type HealResult struct {
	Offered float64
	Backlog int64         // payload bytes of the messages due during the blackout
	Base    time.Duration // median one-way latency before the blackout
	// First is the first delivery after the heal.
	First time.Duration
	// Backlogged: every message due during the blackout delivered.
	// Its ideal is Backlog / link rate.
	Backlogged time.Duration
	// CaughtUp: the backlog delivered and a message due after the heal
	// delivered within Base + CatchSlack (the queue is empty again). Its
	// ideal is Backlog / (link rate − offered rate).
	CaughtUp time.Duration
	Counts   payload.Counts
	Note     string
}

// CatchSlack is how close to the steady latency a message must come for
// the backlog to count as gone.
const CatchSlack = 50 * time.Millisecond

// IdealDrain is Backlog / (link − offered), the time a perfect link needs
// to empty the queue while the load goes on.
func (r HealResult) IdealDrain(link float64) time.Duration {
	if link <= r.Offered {
		return -1
	}
	return time.Duration(float64(r.Backlog*8) / (link - r.Offered) * float64(time.Second))
}

// IdealBacklog is Backlog / link, the time a perfect link needs to carry
// the backlog alone.
func (r HealResult) IdealBacklog(link float64) time.Duration {
	return time.Duration(float64(r.Backlog*8) / link * float64(time.Second))
}

// arrival is one delivery: when it was due and when it came.
type arrival struct{ due, at time.Time }

// analyzeHeal computes a HealResult's times from the deliveries; due are
// the intended send times of every message sent.
func analyzeHeal(due []time.Time, got []arrival, size int, cut, heal time.Time) HealResult {
	r := HealResult{First: -1, Backlogged: -1, CaughtUp: -1}
	var before []time.Duration
	for _, a := range got {
		if a.due.Before(cut) && a.at.Before(cut) {
			before = append(before, a.at.Sub(a.due))
		}
	}
	if len(before) > 0 {
		slices.Sort(before)
		r.Base = before[len(before)/2]
	}
	inCut := 0
	for _, d := range due {
		if !d.Before(cut) && d.Before(heal) {
			inCut++
		}
	}
	r.Backlog = int64(inCut) * int64(size)
	var lastCut time.Time
	cutGot := 0
	var caught time.Time
	for _, a := range got {
		if a.at.After(heal) && (r.First < 0 || a.at.Sub(heal) < r.First) {
			r.First = a.at.Sub(heal)
		}
		if !a.due.Before(cut) && a.due.Before(heal) {
			cutGot++
			if a.at.After(lastCut) {
				lastCut = a.at
			}
		}
		if !a.due.Before(heal) && a.at.Sub(a.due) <= r.Base+CatchSlack && (caught.IsZero() || a.at.Before(caught)) {
			caught = a.at
		}
	}
	if cutGot == inCut {
		r.Backlogged = max(0, lastCut.Sub(heal))
		if !caught.IsZero() {
			r.CaughtUp = max(r.Backlogged, caught.Sub(heal))
		}
	}
	return r
}

// Heal runs a steady load over p, blackholes the path for o.Blackout, heals
// it and times the drain of the backlog.
func Heal(ctx context.Context, p workload.Piper, o HealOptions) (HealResult, error) {
	b, err := payload.NewBuilder(o.Size)
	if err != nil {
		return HealResult{}, err
	}
	interval := time.Duration(float64(o.Size*8) / o.Offered * float64(time.Second))
	n := int((o.Before + o.Blackout + o.After) / interval)
	k := payload.NewChecker(n)
	start := time.Now().Add(20 * time.Millisecond)
	dueOf := func(seq uint64) time.Time { return start.Add(time.Duration(seq) * interval) }
	var mu sync.Mutex // guards got
	got := make([]arrival, 0, n)
	k.OnArrival(func(seq uint64, at time.Time) {
		mu.Lock()
		got = append(got, arrival{dueOf(seq), at})
		mu.Unlock()
	})
	s, err := p.OpenPipe(ctx, func(m []byte) { k.Add(m, time.Now()) })
	if err != nil {
		return HealResult{}, fmt.Errorf("open stream: %w", err)
	}
	defer s.Close()
	cut, heal := start.Add(o.Before), start.Add(o.Before+o.Blackout)
	cutDone, healed := make(chan error, 1), make(chan error, 1)
	cutT := time.AfterFunc(time.Until(cut), func() { cutDone <- o.Cut(true) })
	healT := time.AfterFunc(time.Until(heal), func() { healed <- o.Cut(false) })
	defer cutT.Stop()
	defer healT.Stop()
	due := make([]time.Time, 0, n)
	buf := make([]byte, 0, o.Size)
	for i := range n {
		at := dueOf(uint64(i))
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return HealResult{}, ctx.Err()
			}
		}
		if err := s.Send(b.Append(buf[:0], uint64(i), at)); err != nil {
			return HealResult{}, fmt.Errorf("heal: send %d: %w", i, err)
		}
		if err := s.Sync(ctx); err != nil {
			return HealResult{}, fmt.Errorf("heal: sync %d: %w", i, err)
		}
		due = append(due, at)
	}
	if err := errors.Join(<-cutDone, <-healed); err != nil {
		return HealResult{}, fmt.Errorf("heal: %w", err)
	}
	k.WaitAll(3*time.Second, time.Now().Add(10*time.Second))
	mu.Lock()
	r := analyzeHeal(due, got, o.Size, cut, heal)
	mu.Unlock()
	r.Offered = o.Offered
	r.Counts = k.Counts()
	r.Counts.Expected = len(due)
	r.Note = noteOf(s)
	return r, nil
}
