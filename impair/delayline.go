package impair

import (
	"container/heap"
	"sync"
	"time"
)

// delayLine writes packets at their due time, earliest first (ties in
// arrival order), from one goroutine. A packet due now with nothing queued
// before it is written at once by the caller.
type delayLine struct {
	limit int // bytes queued at most; 0: no limit

	mu     sync.Mutex
	q      items
	seq    uint64
	bytes  int
	busy   bool          // the goroutine is writing a packet
	closed bool          // no more packets
	wake   chan struct{} // capacity 1: a packet was queued or the line closed
	room   *sync.Cond    // signalled when bytes drop or the line closes
	done   chan struct{} // closed when the goroutine has returned
}

type item struct {
	at  time.Time
	seq uint64
	b   []byte
	out func([]byte)
}

type items []item

func (h items) Len() int { return len(h) }
func (h items) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h items) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *items) Push(x any)   { *h = append(*h, x.(item)) }
func (h *items) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = item{}
	*h = old[:len(old)-1]
	return it
}

func newDelayLine(limit int) *delayLine {
	l := &delayLine{limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{})}
	l.room = sync.NewCond(&l.mu)
	go l.run()
	return l
}

// push queues b (owned by the line from now on) to be written by out at at.
// With wait false it returns false, dropping b, when the line is over its
// byte limit; with wait true it waits for room instead (false: closed).
func (l *delayLine) push(at time.Time, b []byte, out func([]byte), wait bool) bool {
	l.mu.Lock()
	for l.limit > 0 && l.bytes+len(b) > l.limit && l.bytes > 0 && !l.closed {
		if !wait {
			l.mu.Unlock()
			return false
		}
		l.room.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return false
	}
	if len(l.q) == 0 && !l.busy && !at.After(time.Now()) {
		l.busy = true
		l.mu.Unlock()
		out(b)
		l.mu.Lock()
		l.busy = false
		l.mu.Unlock()
		return true
	}
	l.seq++
	heap.Push(&l.q, item{at: at, seq: l.seq, b: b, out: out})
	l.bytes += len(b)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return true
}

func (l *delayLine) run() {
	defer close(l.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return
		}
		if len(l.q) == 0 {
			l.mu.Unlock()
			<-l.wake
			continue
		}
		next := l.q[0]
		if wait := time.Until(next.at); wait > 0 {
			l.mu.Unlock()
			t.Reset(wait)
			select {
			case <-t.C:
			case <-l.wake:
				t.Stop() // Go 1.23+: no stale tick can follow Stop
			}
			continue
		}
		heap.Pop(&l.q)
		l.bytes -= len(next.b)
		l.busy = true
		l.room.Broadcast()
		l.mu.Unlock()
		next.out(next.b)
		l.mu.Lock()
		l.busy = false
		l.mu.Unlock()
	}
}

// close drops what is queued and stops the goroutine.
func (l *delayLine) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return
	}
	l.closed = true
	l.q = nil
	l.bytes = 0
	l.room.Broadcast()
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
}
