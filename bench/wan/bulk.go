package wan

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wandist/wandist/bench/payload"
	"github.com/wandist/wandist/bench/workload"
)

// BulkOptions shape a bulk run: send as fast as the system takes it for
// Duration, with at most Window payload bytes sent and not yet delivered.
type BulkOptions struct {
	Size     int
	Duration time.Duration // of sending, warm-up included
	Warm     time.Duration // deliveries before it are not counted in Goodput
	Window   int64
	Idle     time.Duration // after sending: give up when nothing arrives for this long (default 5 s)
	// During, when set, runs once the warm-up is over, while the bulk
	// flow goes on; sending stops when both it and Duration are done.
	During func(ctx context.Context)
}

// BulkResult is what a bulk run delivered.
type BulkResult struct {
	Size     int
	Sent     int
	Counts   payload.Counts // Expected is Sent
	Goodput  float64        // payload bits/s delivered between Warm and the end of sending
	Measured time.Duration  // that interval
	Note     string
}

// maxBulkMsgs bounds a run's sequence numbers (the checker's bitmap).
const maxBulkMsgs = 64 << 20

// Bulk runs one bulk flow over p and counts at the receiver.
func Bulk(ctx context.Context, p workload.Piper, o BulkOptions) (BulkResult, error) {
	b, err := payload.NewBuilder(o.Size)
	if err != nil {
		return BulkResult{}, err
	}
	if o.Idle <= 0 {
		o.Idle = 5 * time.Second
	}
	k := payload.NewChecker(maxBulkMsgs)
	var got atomic.Int64 // payload bytes delivered
	wake := make(chan struct{}, 1)
	s, err := p.OpenPipe(ctx, func(m []byte) {
		k.AddSampled(m)
		got.Add(int64(len(m)))
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return BulkResult{}, fmt.Errorf("open stream: %w", err)
	}
	defer s.Close()
	res := BulkResult{Size: o.Size}
	start := time.Now()
	warmEnd, end := start.Add(o.Warm), start.Add(o.Duration)
	var (
		mu     sync.Mutex // guards atWarm, tWarm (set by the warm-up timer)
		atWarm int64
		tWarm  time.Time
	)
	tw := time.AfterFunc(o.Warm, func() {
		mu.Lock()
		atWarm, tWarm = got.Load(), time.Now()
		mu.Unlock()
	})
	defer tw.Stop()
	duringDone := make(chan struct{})
	if o.During != nil {
		dctx, cancel := context.WithCancel(ctx)
		defer func() { // on an early return too: During ends with Bulk
			cancel()
			<-duringDone
		}()
		go func() {
			defer close(duringDone)
			select {
			case <-time.After(time.Until(warmEnd)):
				o.During(dctx)
			case <-dctx.Done():
			}
		}()
	} else {
		close(duringDone)
	}
	buf := make([]byte, 0, o.Size)
	var sent int64
	syncEvery := max(int64(1<<20), int64(o.Size))
	nextSync := syncEvery
	stopped := func() bool {
		if time.Now().Before(end) {
			return false
		}
		select {
		case <-duringDone:
			return true
		default:
			return false
		}
	}
	for ctx.Err() == nil && !stopped() && res.Sent < maxBulkMsgs {
		if sent-got.Load() > o.Window {
			if err := s.Sync(ctx); err != nil {
				return res, fmt.Errorf("bulk: sync: %w", err)
			}
			for sent-got.Load() > o.Window && ctx.Err() == nil && !stopped() {
				select {
				case <-wake:
				case <-time.After(100 * time.Millisecond): // to see the end of the run
				}
			}
			continue
		}
		if err := s.Send(b.Append(buf[:0], uint64(res.Sent), start)); err != nil {
			return res, fmt.Errorf("bulk: send %d: %w", res.Sent, err)
		}
		res.Sent++
		sent += int64(o.Size)
		if sent >= nextSync {
			nextSync += syncEvery
			if err := s.Sync(ctx); err != nil {
				return res, fmt.Errorf("bulk: sync: %w", err)
			}
		}
	}
	atEnd, tEnd := got.Load(), time.Now()
	<-duringDone
	if err := s.Sync(ctx); err != nil {
		return res, fmt.Errorf("bulk: sync: %w", err)
	}
	waitDelivered(ctx, &got, sent, wake, o.Idle)
	mu.Lock()
	defer mu.Unlock()
	if tWarm.IsZero() {
		return res, fmt.Errorf("bulk: warm-up of %v longer than the run", o.Warm)
	}
	res.Measured = tEnd.Sub(tWarm)
	res.Goodput = float64(atEnd-atWarm) * 8 / res.Measured.Seconds()
	res.Counts = k.Counts()
	res.Counts.Expected = res.Sent
	res.Note = noteOf(s)
	return res, ctx.Err()
}

// waitDelivered waits until want bytes arrived, or nothing arrived for idle.
func waitDelivered(ctx context.Context, got *atomic.Int64, want int64, wake <-chan struct{}, idle time.Duration) {
	t := time.NewTimer(idle)
	defer t.Stop()
	for got.Load() < want {
		select {
		case <-wake:
			t.Reset(idle)
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func noteOf(s workload.Sender) string {
	if n, ok := s.(interface{ Note() string }); ok {
		return n.Note()
	}
	return ""
}
