package workload

import (
	"context"
	"fmt"
	"time"

	"github.com/wandist/wandist/bench/payload"
)

// OneWayOptions shape a one-way run: a fixed sending time (Duration), at
// most N messages if N is set; or, when Duration is 0, a fixed count (N).
type OneWayOptions struct {
	Size     int           // payload bytes
	N        int           // messages to send; with Duration, the most to send (0: no bound)
	Duration time.Duration // send for this long (whole flow-control windows), then wait for the rest
	Window   int           // Sync after this many sends (default: 8 MiB worth)
	Idle     time.Duration // give up waiting when nothing arrives for this long (default 3s)
	Max      time.Duration // give up waiting after this long in all (default 2m)
}

// OneWay sends payloads of o.Size bytes as fast as the system takes them,
// o.N of them or for o.Duration, and counts what the receiver got.
func OneWay(ctx context.Context, p Piper, o OneWayOptions) (OneWayResult, error) {
	b, err := payload.NewBuilder(o.Size)
	if err != nil {
		return OneWayResult{}, err
	}
	if o.N < 0 || o.Duration < 0 || (o.N == 0 && o.Duration == 0) {
		return OneWayResult{}, fmt.Errorf("one-way: N %d, Duration %v: %w", o.N, o.Duration, ErrNoLength)
	}
	if o.Window <= 0 {
		o.Window = max(1, (8<<20)/o.Size)
	}
	if o.Idle <= 0 {
		o.Idle = 3 * time.Second
	}
	if o.Max <= 0 {
		o.Max = 2 * time.Minute
	}
	n := o.N
	if o.Duration > 0 {
		n = 0 // raised a window at a time while sending
	}
	k := payload.NewChecker(n)
	s, err := p.OpenPipe(ctx, func(m []byte) { k.AddSampled(m) })
	if err != nil {
		return OneWayResult{}, fmt.Errorf("open stream: %w", err)
	}
	defer s.Close()
	res := OneWayResult{Size: o.Size}
	buf := make([]byte, 0, o.Size)
	start := time.Now()
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if err := s.Send(b.Append(buf[:0], uint64(i), start)); err != nil {
				res.Refused++
			}
		}
		if err := s.Sync(ctx); err != nil {
			res.SyncErr++
		}
	}
	if o.Duration > 0 {
		// Whole windows, so the count is known before they are sent: the
		// checker expects exactly what was sent.
		for time.Since(start) < o.Duration && ctx.Err() == nil && (o.N == 0 || n+o.Window <= o.N) {
			k.SetExpected(n + o.Window)
			send(n, n+o.Window)
			n += o.Window
		}
	} else {
		for from := 0; from < n && ctx.Err() == nil; from += o.Window {
			send(from, min(n, from+o.Window))
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.Counts = k.WaitAll(o.Idle, time.Now().Add(o.Max))
	res.Note = noteOf(s)
	_, last := k.Times()
	if !last.IsZero() {
		res.Elapsed = last.Sub(start)
	}
	return res, nil
}

// noteOf returns what a Sender has to say about its run (drops, disconnects).
func noteOf(s Sender) string {
	if n, ok := s.(interface{ Note() string }); ok {
		return n.Note()
	}
	return ""
}
