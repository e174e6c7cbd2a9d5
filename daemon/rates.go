package daemon

import (
	"math"
	"sync"
	"time"
)

// rateAlpha weighs the newest one-second sample in the moving averages.
const rateAlpha = 0.3

// backlogRates keeps a peer's enqueue and dequeue (acknowledged) rates as
// exponentially weighted moving averages, sampled once a second by the
// janitor; status derives the time to drain from them.
type backlogRates struct {
	mu       sync.Mutex // guards all below
	last     time.Time
	lastEnq  uint64
	lastDeq  uint64
	enq, deq float64 // messages per second
}

// sample takes the counters at now. A sample no later than the last one
// (a clock that stood still or stepped back) is ignored: it neither changes
// the rates nor moves the baseline, so no counted message is lost from them.
func (r *backlogRates) sample(now time.Time, enqueued, dequeued uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() {
		dt := now.Sub(r.last).Seconds()
		if dt <= 0 {
			return
		}
		r.enq = rateAlpha*float64(enqueued-r.lastEnq)/dt + (1-rateAlpha)*r.enq
		r.deq = rateAlpha*float64(dequeued-r.lastDeq)/dt + (1-rateAlpha)*r.deq
	}
	r.last, r.lastEnq, r.lastDeq = now, enqueued, dequeued
}

// get returns the rates and the estimated seconds to drain queued messages
// (+Inf when nothing drains while something is queued, 0 when empty).
func (r *backlogRates) get(queued int) (enq, deq, drain float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	enq, deq = r.enq, r.deq
	switch {
	case queued == 0:
		drain = 0
	case deq-enq <= 0.01:
		drain = math.Inf(1)
	default:
		drain = float64(queued) / (deq - enq)
	}
	return enq, deq, drain
}
