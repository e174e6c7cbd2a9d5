package transport

import (
	"context"
	"sync"
	"sync/atomic"
)

// queuedConn is a Conn a listener can abort with a reason.
type queuedConn interface {
	Conn
	abort(err error)
}

// acceptQueue hands handshaken connections from a listener's goroutines to
// Accept. It is bounded: a listener reserves a slot before it confirms a
// connection to its dialer; when none is free the connection is refused
// (ErrAcceptQueueFull) and counted, so that a slow acceptor cannot make the
// listener hold an unbounded number of connections.
type acceptQueue struct {
	ch       chan queuedConn // cap acceptQueueLen, never blocks a reserved put
	slots    chan struct{}   // one token per reserved or queued connection
	stopped  chan struct{}
	stopOnce sync.Once
	err      error // why the queue stopped; set before stopped is closed
	dropped  atomic.Uint64
}

func newAcceptQueue() *acceptQueue {
	return &acceptQueue{
		ch:      make(chan queuedConn, acceptQueueLen),
		slots:   make(chan struct{}, acceptQueueLen),
		stopped: make(chan struct{}),
	}
}

// reserve takes a slot for a connection about to be confirmed. It fails,
// counting a drop, when the queue is full.
func (q *acceptQueue) reserve() bool {
	select {
	case q.slots <- struct{}{}:
		return true
	default:
		q.dropped.Add(1)
		return false
	}
}

// unreserve gives back a slot whose connection will not be queued.
func (q *acceptQueue) unreserve() { <-q.slots }

// put queues c, which holds a reserved slot, or aborts it if the queue
// stopped.
func (q *acceptQueue) put(c queuedConn) {
	select {
	case <-q.stopped:
		q.unreserve()
		c.abort(ErrClosed)
	default:
		q.ch <- c
	}
}

// get waits for a queued connection.
func (q *acceptQueue) get(ctx context.Context) (Conn, error) {
	select {
	case <-q.stopped:
		return nil, q.err
	default:
	}
	select {
	case c := <-q.ch:
		q.unreserve()
		return c, nil
	case <-q.stopped:
		return nil, q.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop makes get fail with err from now on. Only the first call counts.
func (q *acceptQueue) stop(err error) {
	q.stopOnce.Do(func() {
		q.err = err
		close(q.stopped)
	})
}

// drain closes the connections still queued. Call it after stop, once no
// goroutine calls put any more.
func (q *acceptQueue) drain() {
	for {
		select {
		case c := <-q.ch:
			q.unreserve()
			c.abort(ErrClosed)
		default:
			return
		}
	}
}
