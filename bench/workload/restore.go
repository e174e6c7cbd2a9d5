package workload

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/wandist/wandist/bench/payload"
)

// RestoreOptions shape a cut-and-heal run.
type RestoreOptions struct {
	Size   int           // payload bytes
	Rate   int           // messages per second, steady
	Before time.Duration // sending before the cut
	Cut    time.Duration // how long the path stays cut
	After  time.Duration // sending after the heal
	Idle   time.Duration // wait for stragglers until nothing arrives for this long (default 5s)
}

// Restore sends a steady stream, cuts the path between the two servers for
// o.Cut, heals it, and measures from the heal to the first delivery of a
// message sent during the cut, and how many of those never arrived.
func Restore(ctx context.Context, p Piper, cut Cutter, o RestoreOptions) (RestoreResult, error) {
	if o.Rate <= 0 {
		return RestoreResult{}, fmt.Errorf("restore run: rate %d must be positive", o.Rate)
	}
	if o.Idle <= 0 {
		o.Idle = 5 * time.Second
	}
	b, err := payload.NewBuilder(o.Size)
	if err != nil {
		return RestoreResult{}, err
	}
	interval := time.Second / time.Duration(o.Rate)
	total := int((o.Before + o.Cut + o.After) / interval)
	var amu sync.Mutex
	arrived := make([]time.Time, total)
	k := payload.NewChecker(total)
	k.OnArrival(func(seq uint64, at time.Time) {
		amu.Lock()
		arrived[seq] = at
		amu.Unlock()
	})
	s, err := p.OpenPipe(ctx, func(m []byte) { k.Add(m, time.Now()) })
	if err != nil {
		return RestoreResult{}, fmt.Errorf("open stream: %w", err)
	}
	defer s.Close()
	res := RestoreResult{CutKind: cut.CutKind(), Cut: o.Cut}
	var (
		cutFrom      = -1 // first seq sent after the cut
		cutTo        = -1 // first seq sent after the heal
		heal         time.Time
		cutAt        time.Time
		cutSequences int
	)
	start := time.Now()
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		el := time.Since(start)
		if cutFrom < 0 && el >= o.Before {
			cut.SetCut(true)
			cutAt = time.Now()
			cutFrom = i
		}
		if cutFrom >= 0 && cutTo < 0 && time.Since(cutAt) >= o.Cut {
			// The heal's time is taken before the cut is lifted: what
			// lifting it releases may arrive before SetCut returns.
			heal = time.Now()
			cut.SetCut(false)
			cutTo = i
		}
		if err := s.Send(b.Append(nil, uint64(i), at)); err != nil {
			res.Refused++
		}
		if i%100 == 99 {
			_ = s.Sync(ctx)
		}
	}
	if cutTo < 0 { // the run ended within the cut: heal now
		heal, cutTo = time.Now(), total
		cut.SetCut(false)
	}
	_ = s.Sync(ctx)
	res.Counts = k.WaitAll(o.Idle, time.Now().Add(2*time.Minute))
	res.Note = noteOf(s)
	cutSequences = cutTo - cutFrom
	res.SentDuring = cutSequences
	res.FirstCutMsg, res.FirstAny, res.Drained = -1, -1, -1
	times := make([]time.Time, total)
	amu.Lock()
	copy(times, arrived)
	amu.Unlock()
	lastCut := time.Time{}
	allCut := true
	for seq := cutFrom; seq < cutTo; seq++ {
		t := times[seq]
		if t.IsZero() {
			res.LostDuring++
			allCut = false
			continue
		}
		if t.Before(heal) {
			res.DeliveredEarl++
			continue
		}
		if d := t.Sub(heal); res.FirstCutMsg < 0 || d < res.FirstCutMsg {
			res.FirstCutMsg = d
		}
		if t.After(lastCut) {
			lastCut = t
		}
	}
	if allCut && !lastCut.IsZero() {
		res.Drained = lastCut.Sub(heal)
	}
	for _, t := range times {
		if !t.IsZero() && !t.Before(heal) {
			if d := t.Sub(heal); res.FirstAny < 0 || d < res.FirstAny {
				res.FirstAny = d
			}
		}
	}
	return res, nil
}
