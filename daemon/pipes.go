package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// pipes.go: the pipes of a link (docs/wire-spec.md, "Pipes"). A pipe is a
// byte stream between two nodes that a relay carries (relay.go): the
// relayed link's TLS and yamux run over it end to end. Every pipe of a
// link travels on ONE pipes stream per direction, which each side opens
// at its first pipe frame to send; so a relay keeps no stream, goroutine
// or TLS state per pipe: an entry in each link's table.
//
// Per link, pipeMux holds:
//   - the table of the link's pipes by ID: an endpoint (*pipeConn) or a
//     relay's half (*relayHalf);
//   - the outgoing queue of encoded frames, written by ONE writer goroutine
//     that owns the pipes stream (started at the first frame); senders
//     append and wake it through a capacity-1 channel;
//   - the reader of the peer's pipes stream (in the goroutine of the link
//     that accepted it), which dispatches each frame to its pipe.
//
// Bounds (pipeLimits; defaults below):
//   - the outgoing queue: PipeData is queued only while it holds less than
//     queueBytes; a sender waits for the writer to take the queue (an
//     endpoint's Write, within its write deadline; a relay at most
//     relayWait, then it closes that pipe, counted). PipeOpen and PipeClose
//     are always queued (at most one each per pipe). So a link's pipes hold
//     at most queueBytes + one frame queued and as much again being
//     written.
//   - an endpoint's receive buffer: recvBytes. Its reader, the relayed
//     link's yamux, reads without waiting on its streams, and the peer may
//     have in flight at most its yamux streams' windows (a link opens 4
//     streams: control and 3 lanes, of transport.OverlayStreamWindow each).
//     More is a peer that ignores the windows: the pipe is closed, counted
//     (wandist_pipe_overflow_total{reason="receive"}).

// pipeLimits bound the pipes of a node.
type pipeLimits struct {
	maxPipes   int           // endpoint pipes, and relayed pairs, each in progress on the node
	queueBytes int           // a link's outgoing pipe queue (PipeData)
	recvBytes  int           // an endpoint pipe's receive buffer
	relayWait  time.Duration // how long a relay waits for room in a link's queue
	chunk      int           // the largest PipeData payload
}

// overlayStreams is the streams a relayed link's side opens: control and
// one per lane.
const overlayStreams = 4

var defaultPipeLimits = pipeLimits{
	maxPipes:   4096,
	queueBytes: 1 << 20,
	recvBytes:  overlayStreams*transport.OverlayStreamWindow + 1<<20, // + yamux and TLS framing
	relayWait:  5 * time.Second,
	chunk:      32 << 10,
}

// errPipeGone: the pipe a frame was for is no longer in the link's table.
var errPipeGone = errors.New("pipe: closed")

// errPipeWait: a relay waited relayWait for room in a link's queue.
var errPipeWait = errors.New("pipe: the link's queue stayed full")

// pipeEnd is an entry of a link's pipe table.
type pipeEnd interface {
	data(b []byte)                        // a PipeData from the peer (b aliases the reader's buffer)
	closedByPeer(code uint8, text string) // a PipeClose from the peer
	linkDown()                            // the link ended
}

// pipeMux is the pipes of one link.
type pipeMux struct {
	l *link

	mu      sync.Mutex         // guards the fields below
	pipes   map[uint64]pipeEnd // by ID; nil until the first pipe
	nextID  uint64             // the last ID this side allocated
	peerID  uint64             // the last ID the peer opened
	out     []byte             // frames waiting for the writer
	writing bool               // the writer was started
	stopped bool               // the link is ending: no writer starts
	reading bool               // the peer's pipes stream is read
	ended   bool               // the link ended: nothing is queued or added
	space   chan struct{}      // closed and replaced when the writer takes the queue
	wake    chan struct{}      // capacity 1
}

func newPipeMux(l *link) *pipeMux {
	return &pipeMux{l: l, wake: make(chan struct{}, 1), space: make(chan struct{})}
}

func (m *pipeMux) lim() *pipeLimits { return &m.l.p.d.relay.lim }

// chunk is the largest PipeData payload on this link.
func (m *pipeMux) chunk() int { return max(1, min(m.lim().chunk, m.l.maxFrame-64)) }

// newID allocates a pipe ID: odd on the dialer's side of the link, even
// on the acceptor's. Called with mu held.
func (m *pipeMux) newID() uint64 {
	switch {
	case m.nextID != 0:
		m.nextID += 2
	case m.l.dialer:
		m.nextID = 1
	default:
		m.nextID = 2
	}
	return m.nextID
}

// add allocates an ID for e, enters it and queues its PipeOpen; false if
// the link ended.
func (m *pipeMux) add(e func(id uint64) pipeEnd, cluster, node string) (uint64, pipeEnd, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		return 0, nil, false
	}
	id := m.newID()
	pe := e(id)
	if m.pipes == nil {
		m.pipes = map[uint64]pipeEnd{}
	}
	m.pipes[id] = pe
	m.queueLocked(&wire.PipeOpen{ID: id, Cluster: cluster, Node: node})
	return id, pe, true
}

// enter enters a pipe the peer opened; false if the link ended.
func (m *pipeMux) enter(id uint64, e pipeEnd) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		return false
	}
	if m.pipes == nil {
		m.pipes = map[uint64]pipeEnd{}
	}
	m.pipes[id] = e
	return true
}

// remove takes e out of the table (if it is there under id).
func (m *pipeMux) remove(id uint64, e pipeEnd) {
	m.mu.Lock()
	if m.pipes[id] == e {
		delete(m.pipes, id)
	}
	m.mu.Unlock()
}

// queueLocked appends a frame and wakes the writer, starting it at the
// first frame. Called with mu held.
func (m *pipeMux) queueLocked(f wire.Message) {
	m.out = wire.AppendFrame(m.out, f)
	if !m.writing && !m.stopped {
		m.writing = true
		m.l.wg.Go(m.writer)
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// sendClose queues a PipeClose (never blocks).
func (m *pipeMux) sendClose(id uint64, code uint8, reason string) {
	if len(reason) > wire.MaxPipeReason {
		reason = reason[:wire.MaxPipeReason]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ended {
		m.queueLocked(&wire.PipeClose{ID: id, Code: code, Reason: reason})
	}
}

// sendData queues a PipeData for the pipe id (len(b) <= chunk), waiting
// while the queue is over its bound: until stop is closed (errPipeGone),
// dl is closed (os.ErrDeadlineExceeded) or, if wait > 0, for wait
// (errPipeWait). stop and dl may be nil. It fails with errPipeGone if the
// pipe left the table and with errPipeLinkDown if the link ended.
func (m *pipeMux) sendData(id uint64, b []byte, stop, dl <-chan struct{}, wait time.Duration) error {
	var timer <-chan time.Time
	for {
		m.mu.Lock()
		switch _, ok := m.pipes[id]; {
		case m.ended:
			m.mu.Unlock()
			return errPipeLinkDown
		case !ok:
			m.mu.Unlock()
			return errPipeGone
		case len(m.out) < m.lim().queueBytes:
			m.queueLocked(&wire.PipeData{ID: id, Data: b})
			m.mu.Unlock()
			return nil
		}
		space := m.space
		m.mu.Unlock()
		if wait > 0 && timer == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-space:
		case <-stop:
			return errPipeGone
		case <-dl:
			return os.ErrDeadlineExceeded
		case <-timer:
			return errPipeWait
		case <-m.l.ctx.Done():
			return errPipeLinkDown
		}
	}
}

// writer opens this side's pipes stream and writes the queue to it until
// the link ends.
func (m *pipeMux) writer() {
	l := m.l
	s, err := l.conn.OpenStream(l.ctx)
	if err != nil {
		l.fail(fmt.Errorf("open pipes stream: %w", err))
		return
	}
	stop := context.AfterFunc(l.ctx, func() { unblock(s) })
	defer stop()
	defer s.Close()
	out := wire.AppendFrame(nil, &wire.StreamInit{Kind: wire.StreamPipes})
	for {
		m.mu.Lock()
		if len(m.out) >= m.lim().queueBytes { // senders may wait for room
			close(m.space)
			m.space = make(chan struct{})
		}
		out = append(out, m.out...)
		m.out = m.out[:0]
		if cap(m.out) > 2*m.lim().queueBytes {
			m.out = nil // don't keep a burst's buffer
		}
		m.mu.Unlock()
		if len(out) > 0 {
			if _, err := s.Write(out); err != nil {
				l.fail(fmt.Errorf("pipes write: %w", err))
				return
			}
			out = out[:0]
			if cap(out) > 2*m.lim().queueBytes {
				out = nil
			}
		}
		select {
		case <-m.wake:
		case <-l.ctx.Done():
			return
		}
	}
}

// quit keeps a writer from starting: the link waits for its goroutines.
func (m *pipeMux) quit() {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
}

// end ends every pipe of the link (called once the link's goroutines are
// done): endpoints fail, relayed pairs are closed on their other link.
func (m *pipeMux) end() {
	m.mu.Lock()
	pipes := m.pipes
	m.pipes, m.out, m.ended = nil, nil, true
	m.mu.Unlock()
	for _, e := range pipes {
		e.linkDown()
	}
}

// read reads the peer's pipes stream and dispatches its frames, until the
// stream or the link ends (in the goroutine that accepted the stream).
func (m *pipeMux) read(s transport.Stream) {
	l := m.l
	m.mu.Lock()
	again := m.reading
	m.reading = true
	m.mu.Unlock()
	if again {
		l.protocolError(errors.New("a second pipes stream"))
		return
	}
	r := wire.NewReader(s, l.p.d.cfg.Link.MaxFrameSize)
	var (
		open wire.PipeOpen
		data wire.PipeData
		cl   wire.PipeClose
	)
	for frames := 0; ; frames++ {
		t, body, err := r.ReadFrame()
		if err != nil {
			if l.ctx.Err() == nil && !errors.Is(err, io.EOF) {
				var fe *wire.FrameError
				if errors.As(err, &fe) {
					l.protocolError(err)
					return
				}
				l.fail(fmt.Errorf("pipes read: %w", err))
			}
			return
		}
		if frames&63 == 0 {
			l.lastRecv.Store(time.Now().UnixNano())
		}
		switch t {
		case wire.TypePipeOpen:
			err = open.DecodeBody(body)
			if err == nil {
				err = m.opened(&open)
			}
		case wire.TypePipeData:
			if err = data.DecodeBody(body); err == nil {
				if e := m.lookup(data.ID); e != nil {
					e.data(data.Data)
				}
			}
		case wire.TypePipeClose:
			if err = cl.DecodeBody(body); err == nil {
				if e := m.lookup(cl.ID); e != nil {
					e.closedByPeer(cl.Code, cl.Reason)
				}
			}
		default:
			err = fmt.Errorf("unexpected %v on a pipes stream", t)
		}
		if err != nil {
			l.protocolError(err)
			return
		}
	}
}

func (m *pipeMux) lookup(id uint64) pipeEnd {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pipes[id]
}

// opened checks a PipeOpen's ID (the peer's parity, above the last it
// opened: else a protocol error) and hands it to the relay (relay.go).
func (m *pipeMux) opened(o *wire.PipeOpen) error {
	peerOdd := !m.l.dialer
	m.mu.Lock()
	last := m.peerID
	if o.ID > last && (o.ID%2 == 1) == peerOdd {
		m.peerID = o.ID
	}
	m.mu.Unlock()
	switch {
	case (o.ID%2 == 1) != peerOdd:
		return fmt.Errorf("PipeOpen %d: the peer's pipe IDs are %s", o.ID, map[bool]string{true: "odd", false: "even"}[peerOdd])
	case o.ID <= last:
		return fmt.Errorf("PipeOpen %d after %d: pipe IDs grow", o.ID, last)
	}
	m.l.pipeOpened(o)
	return nil
}
