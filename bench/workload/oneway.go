package workload

import (
	"context"
	"fmt"
	"time"

	"github.com/wandist/wandist/bench/payload"
)

// OneWayOptions shape a one-way run.
type OneWayOptions struct {
	Size   int           // payload bytes
	N      int           // messages to send
	Window int           // Sync after this many sends (default: 8 MiB worth)
	Idle   time.Duration // give up waiting when nothing arrives for this long (default 3s)
	Max    time.Duration // give up waiting after this long in all (default 2m)
}

// OneWay sends o.N payloads of o.Size bytes as fast as the system takes them
// and counts what the receiver got.
func OneWay(ctx context.Context, p Piper, o OneWayOptions) (OneWayResult, error) {
	b, err := payload.NewBuilder(o.Size)
	if err != nil {
		return OneWayResult{}, err
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
	k := payload.NewChecker(o.N)
	s, err := p.OpenPipe(ctx, func(m []byte) { k.AddSampled(m) })
	if err != nil {
		return OneWayResult{}, fmt.Errorf("open stream: %w", err)
	}
	defer s.Close()
	res := OneWayResult{Size: o.Size}
	buf := make([]byte, 0, o.Size)
	start := time.Now()
	for i := range o.N {
		if err := s.Send(b.Append(buf[:0], uint64(i), start)); err != nil {
			res.Refused++
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
		}
		if i%o.Window == o.Window-1 {
			if err := s.Sync(ctx); err != nil {
				res.SyncErr++
			}
		}
	}
	if err := s.Sync(ctx); err != nil {
		res.SyncErr++
	}
	res.Counts = k.WaitAll(o.Idle, start.Add(o.Max))
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
