// Package deadline is a settable deadline for in-memory net.Conn
// implementations (after net.Pipe's): its wait channel closes when the
// deadline passes, and setting a new one reopens it. The transport's
// in-memory pipes and the daemon's relayed pipes share it.
package deadline

import (
	"sync"
	"time"
)

// Deadline is a settable deadline. The zero value is not usable; call New.
type Deadline struct {
	mu     sync.Mutex // guards timer and cancel
	timer  *time.Timer
	cancel chan struct{}
}

// New returns a deadline that is not set.
func New() *Deadline { return &Deadline{cancel: make(chan struct{})} }

// Set sets the deadline: the zero time clears it, a time in the past closes
// the wait channel at once.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: its close is done or under way
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() || time.Until(t) > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		if !t.IsZero() {
			cancel := d.cancel
			d.timer = time.AfterFunc(time.Until(t), func() { close(cancel) })
		}
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// Wait returns a channel that is closed when the deadline passes.
func (d *Deadline) Wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Passed reports whether the deadline has passed.
func (d *Deadline) Passed() bool { return isClosed(d.Wait()) }
