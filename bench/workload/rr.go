package workload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wandist/wandist/bench/latency"
	"github.com/wandist/wandist/bench/payload"
)

// ErrWrongReply is counted when a reply does not echo its request.
var ErrWrongReply = errors.New("reply does not echo its request")

// ErrNoLength is returned for a one-way run given neither a count nor a duration.
var ErrNoLength = errors.New("a one-way run needs a positive count or duration")

// LatencyOptions shape a fixed-rate request-reply run.
type LatencyOptions struct {
	Size     int           // request payload bytes (the reply echoes it)
	Rate     int           // requests per second offered
	Duration time.Duration // how long requests are offered
	Timeout  time.Duration // a request not answered within this fails (default 5s)
}

// Latency offers o.Rate requests per second for o.Duration, each from its own
// goroutine started at its intended time (open loop: a slow reply does not
// delay the next request), and times every reply from the request's intended
// send time, so queueing shows in the figures.
func Latency(ctx context.Context, c Caller, o LatencyOptions) (LatencyResult, error) {
	if o.Rate <= 0 || o.Duration <= 0 {
		return LatencyResult{}, fmt.Errorf("latency run: rate %d and duration %v must be positive", o.Rate, o.Duration)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	b, err := payload.NewBuilder(o.Size)
	if err != nil {
		return LatencyResult{}, err
	}
	n := int(float64(o.Rate) * o.Duration.Seconds())
	interval := time.Second / time.Duration(o.Rate)
	lat := make([]time.Duration, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lastDone time.Time
	)
	late := make([]time.Duration, n) // how late each request was started
	pc := newPacer()
	defer pc.release()
	start := time.Now().Add(10 * time.Millisecond)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		pc.until(at)
		late[i] = time.Since(at)
		if ctx.Err() != nil {
			wg.Wait()
			return LatencyResult{}, ctx.Err()
		}
		wg.Go(func() {
			cctx, cancel := context.WithDeadline(ctx, at.Add(o.Timeout))
			defer cancel()
			rep, err := c.Call(cctx, b.Append(nil, uint64(i), at))
			now := time.Now()
			if err == nil {
				h, perr := payload.Parse(rep)
				if perr != nil || h.Seq != uint64(i) {
					err = ErrWrongReply
				}
			}
			if err != nil {
				lat[i] = -1
				return
			}
			lat[i] = now.Sub(at)
			mu.Lock()
			if now.After(lastDone) {
				lastDone = now
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res := LatencyResult{Rate: o.Rate, Duration: o.Duration, Sent: n}
	ok := lat[:0]
	for _, l := range lat {
		if l < 0 {
			res.Errors++
			continue
		}
		ok = append(ok, l)
	}
	res.OK = len(ok)
	res.Latency = latency.Summarize(ok)
	res.SendLate = latency.Summarize(late).P99
	if !lastDone.IsZero() {
		res.Behind = max(0, lastDone.Sub(start.Add(time.Duration(n-1)*interval)))
	}
	return res, nil
}

// Warm makes n sequential calls, so that first-use costs (reply
// subscriptions, interest propagation) are not measured; it fails on the
// first error.
func Warm(ctx context.Context, c Caller, size, n int) error {
	b, err := payload.NewBuilder(size)
	if err != nil {
		return err
	}
	for i := range n {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rep, err := c.Call(cctx, b.Append(nil, uint64(i), time.Now()))
		cancel()
		if err != nil {
			return fmt.Errorf("warm-up call %d: %w", i, err)
		}
		if h, err := payload.Parse(rep); err != nil || h.Seq != uint64(i) {
			return fmt.Errorf("warm-up call %d: %w", i, ErrWrongReply)
		}
	}
	return nil
}

// MaxRate steps through rates (ascending), each for step, and returns the
// highest rate sustained (see LatencyResult.Sustained) before the first that
// was not, with every step's result. A step that fails is tried once more
// before the search stops: the machine is shared, and one disturbed step
// should not end it. run does one step.
func MaxRate(ctx context.Context, rates []int, bound time.Duration, run func(ctx context.Context, rate int) (LatencyResult, error)) (int, []LatencyResult, error) {
	best := 0
	var steps []LatencyResult
	for _, r := range rates {
		ok := false
		for try := 0; try < 2 && !ok; try++ {
			res, err := run(ctx, r)
			if err != nil {
				return best, steps, err
			}
			steps = append(steps, res)
			ok = res.Sustained(bound)
		}
		if !ok {
			break
		}
		best = r
	}
	return best, steps, nil
}
