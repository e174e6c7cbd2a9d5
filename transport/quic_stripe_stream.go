package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Striped streams: once both sides of a Conn of several QUIC connections
// agreed to stripe (see stripedConn.mode), every stream is a group of one
// QUIC stream on each connection the Conn had when it was opened, so that
// one stream's bytes use the congestion windows of all of them.
//
// Each member stream starts with a header: the group id (8 bytes, big
// endian, chosen by the opener), the member's index and the group's size
// (one byte each). Then the bytes written go as chunks, each a 2-byte
// big-endian length, the index of the member that carries the next chunk,
// and at most maxStripeChunk bytes. The first chunk goes on member 0; the
// writer picks each next member by how soon it would be sent: the bytes
// queued on the member over its connection's congestion window (pickNext).
// The reader follows the chain: each member carries its chunks in order,
// so no reordering buffer is needed beyond the QUIC streams' own. Closing
// the stream ends every member.

const (
	stripeHeaderLen = 10
	chunkHeaderLen  = 3
	maxStripeChunk  = 16 << 10
)

// errBadStripe says what was wrong with a member stream's header.
var errBadStripe = errors.New("transport: bad striped stream header")

// stripeHeader is the header of one member stream.
type stripeHeader struct {
	id          uint64
	index, size int
}

func (h stripeHeader) encode() []byte {
	b := make([]byte, stripeHeaderLen)
	binary.BigEndian.PutUint64(b, h.id)
	b[8], b[9] = byte(h.index), byte(h.size)
	return b
}

func parseStripeHeader(b []byte) (stripeHeader, error) {
	h := stripeHeader{id: binary.BigEndian.Uint64(b), index: int(b[8]), size: int(b[9])}
	if h.size < 1 || h.size > MaxQUICConns || h.index >= h.size {
		return h, fmt.Errorf("%w: member %d of %d (at most %d)", errBadStripe, h.index, h.size, MaxQUICConns)
	}
	return h, nil
}

// stripedStream is a Stream made of one QUIC stream per connection.
//
// Writes are asynchronous per member: Write cuts the bytes into chunks and
// queues each on its member, and one goroutine per member (memberWriter)
// writes that member's queue to its QUIC stream. A member whose connection
// is held back by its congestion window (quic-go's Write blocks until the
// data is packed) then holds up only its own chunks: the next chunks go to
// members with room (pickNext), and the reader, which follows the chain,
// finds them waiting once the held chunk arrives. Each member's queue is
// bounded (maxMemberQueued); Write waits for room (or the deadline) when
// the member of its next chunk is full.
type stripedStream struct {
	members []*quicStream
	conn    *stripedConn
	done    <-chan struct{} // the Conn's ctx.Done: it is dying, the member writers end

	wser     sync.Mutex // held by Write throughout: one Write's chunks are not mixed with another's
	wmu      sync.Mutex
	wnext    int             // guarded by wmu: the member of the next chunk written
	queue    [][][]byte      // guarded by wmu: each member's chunks not yet written; the first may be being written
	queued   []int           // guarded by wmu: the bytes in each member's queue
	closing  bool            // guarded by wmu: Close was called; the writers end once their queues are written
	werr     error           // guarded by wmu: a member write failed; no more chunks may follow
	deadline time.Time       // guarded by wmu: Write's deadline to wait for room
	wake     []chan struct{} // capacity 1 each: member i's queue grew, or the stream is closing
	space    chan struct{}   // capacity 1: a member wrote a chunk, or the deadline changed
	rclosed  atomic.Bool     // Close was called: Read fails

	rmu   sync.Mutex
	rnext int                  // guarded by rmu: the member of the chunk being read
	left  int                  // guarded by rmu: bytes of that chunk not read yet
	after int                  // guarded by rmu: the member of the chunk after it
	hdr   [chunkHeaderLen]byte // guarded by rmu: its header, as far as read
	hdrN  int                  // guarded by rmu: bytes of hdr read
	rerr  error                // guarded by rmu: the peer broke the chunk chain
}

// maxMemberQueued bounds the bytes queued on one member of a striped
// stream and not yet taken by its QUIC stream.
const maxMemberQueued = 4 * maxStripeChunk

// newStripedStream makes a striped stream of members and starts its member
// writers, which the Conn's Close waits for.
func (c *stripedConn) newStripedStream(members []*quicStream) *stripedStream {
	n := len(members)
	s := &stripedStream{members: members, conn: c, done: c.ctx.Done(), queue: make([][][]byte, n), queued: make([]int, n),
		wake: make([]chan struct{}, n), space: make(chan struct{}, 1)}
	for i := range s.wake {
		s.wake[i] = make(chan struct{}, 1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		s.werr = ErrClosed
		return s
	}
	for i := range members {
		c.wg.Go(func() { s.memberWriter(i) })
	}
	return s
}

// notify wakes the goroutine waiting on ch, if any.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// pickNext chooses the member of the chunk after the one being written:
// the one whose queue would be written soonest, its queued bytes over its
// connection's congestion window.
func (s *stripedStream) pickNext(k int) int {
	best, bestScore := 0, -1.0
	for i, m := range s.members {
		w := max(float64(m.c.qc.ConnectionStats().CongestionWindow), 1)
		score := float64(s.queued[i]+k) / w
		if bestScore < 0 || score < bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

func (s *stripedStream) Write(b []byte) (int, error) {
	s.wser.Lock()
	defer s.wser.Unlock()
	n := 0
	for len(b) > 0 {
		k, err := s.queueChunk(b)
		if errors.Is(err, errConnDying) {
			<-s.conn.done
			return n, s.conn.Err()
		}
		if err != nil {
			return n, err
		}
		n += k
		b = b[k:]
	}
	return n, nil
}

// errConnDying tells Write that the Conn is dying: it answers the Conn's
// error once it is dead.
var errConnDying = errors.New("transport: connection dying")

// queueChunk queues the next chunk of b on its member, waiting for room,
// and returns its length.
func (s *stripedStream) queueChunk(b []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	k := min(len(b), maxStripeChunk)
	to := s.wnext
	for {
		select {
		case <-s.done:
			return 0, errConnDying
		default:
		}
		switch {
		case s.werr != nil:
			return 0, s.werr
		case s.closing:
			return 0, ErrClosed
		}
		if s.queued[to] == 0 || s.queued[to]+chunkHeaderLen+k <= maxMemberQueued {
			break
		}
		if err := s.waitRoom(); err != nil {
			return 0, err
		}
	}
	buf := make([]byte, chunkHeaderLen+k)
	binary.BigEndian.PutUint16(buf, uint16(k))
	s.queued[to] += len(buf)
	next := s.pickNext(chunkHeaderLen + k)
	buf[2] = byte(next)
	copy(buf[chunkHeaderLen:], b[:k])
	s.queue[to] = append(s.queue[to], buf)
	notify(s.wake[to])
	s.wnext = next
	return k, nil
}

// waitRoom waits, with wmu released, until a member wrote a chunk or the
// deadline changed; it fails once the deadline passed or the Conn is dying.
func (s *stripedStream) waitRoom() error {
	var expired <-chan time.Time
	if !s.deadline.IsZero() {
		d := time.Until(s.deadline)
		if d <= 0 {
			return deadlineError{}
		}
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	s.wmu.Unlock()
	defer s.wmu.Lock()
	select {
	case <-s.space:
		return nil
	case <-expired:
		return deadlineError{}
	case <-s.done:
		return errConnDying
	}
}

// memberWriter writes member i's queue to its QUIC stream, and closes the
// member once the stream is closing and the queue is written, or a write
// failed, or the Conn died.
func (s *stripedStream) memberWriter(i int) {
	m := s.members[i]
	for {
		s.wmu.Lock()
		for len(s.queue[i]) == 0 && !s.closing && s.werr == nil {
			s.wmu.Unlock()
			select {
			case <-s.wake[i]:
			case <-s.done:
				return // the member dies with its connection
			}
			s.wmu.Lock()
		}
		if s.werr != nil {
			// The chain is broken: the peer must not take the end of
			// this member for the end of the stream.
			s.wmu.Unlock()
			m.s.CancelWrite(quicCodeStreamClosed)
			m.Close()
			return
		}
		if len(s.queue[i]) == 0 { // closing, and all written
			s.wmu.Unlock()
			m.Close()
			return
		}
		chunk := s.queue[i][0]
		s.wmu.Unlock()
		_, err := m.Write(chunk)
		s.wmu.Lock()
		s.queue[i][0] = nil
		s.queue[i] = s.queue[i][1:]
		s.queued[i] -= len(chunk)
		if err != nil && s.werr == nil {
			s.werr = err // a chunk lost breaks the chain: every member stops
			for _, w := range s.wake {
				notify(w)
			}
		}
		s.wmu.Unlock()
		notify(s.space)
	}
}

func (s *stripedStream) Read(b []byte) (int, error) {
	if s.rclosed.Load() {
		return 0, ErrClosed
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.rerr != nil {
		return 0, s.rerr
	}
	if len(b) == 0 {
		return 0, nil
	}
	for s.left == 0 {
		m := s.members[s.rnext]
		n, err := m.Read(s.hdr[s.hdrN:])
		s.hdrN += n
		if s.hdrN == len(s.hdr) {
			if after := int(s.hdr[2]); after >= len(s.members) {
				s.rerr = fmt.Errorf("%w: a chunk names member %d of %d next", errBadStripe, after, len(s.members))
				return 0, s.rerr
			}
			s.left, s.after, s.hdrN = int(binary.BigEndian.Uint16(s.hdr[:])), int(s.hdr[2]), 0
			if s.left == 0 {
				s.rnext = s.after // an empty chunk: not written, but harmless
			}
			continue
		}
		if err == io.EOF && s.hdrN > 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return 0, err
		}
	}
	m := s.members[s.rnext]
	n, err := m.Read(b[:min(len(b), s.left)])
	s.left -= n
	if s.left == 0 {
		s.rnext = s.after
	}
	if err == io.EOF && (n > 0 || s.left > 0) {
		if s.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil // the next chunk is on another member
	}
	return n, err
}

// Close ends every member after the chunks queued so far (its member
// writer closes it) and stops reading at once.
func (s *stripedStream) Close() error {
	if s.rclosed.Swap(true) {
		return nil
	}
	for _, m := range s.members {
		m.s.CancelRead(quicCodeStreamClosed)
	}
	s.wmu.Lock()
	s.closing = true
	s.wmu.Unlock()
	for _, w := range s.wake {
		notify(w)
	}
	notify(s.space)
	return nil
}

func (s *stripedStream) SetDeadline(t time.Time) error {
	s.wmu.Lock()
	s.deadline = t
	s.wmu.Unlock()
	notify(s.space)
	var errs []error
	for _, m := range s.members {
		errs = append(errs, m.SetDeadline(t))
	}
	return errors.Join(errs...)
}

// openStriped opens a group of one stream on each of members; their
// headers are the first chunks their member writers send.
func (c *stripedConn) openStriped(ctx context.Context, id uint64, members []*quicConn) (*stripedStream, error) {
	var ms []*quicStream
	for _, m := range members {
		st, err := m.OpenStream(ctx)
		if err != nil {
			for _, q := range ms {
				q.Close()
			}
			return nil, err
		}
		ms = append(ms, st.(*quicStream))
	}
	s := c.newStripedStream(ms)
	s.wmu.Lock()
	for i := range ms {
		h := stripeHeader{id: id, index: i, size: len(ms)}.encode()
		s.queue[i] = append(s.queue[i], h)
		s.queued[i] += len(h)
		notify(s.wake[i])
	}
	s.wmu.Unlock()
	return s, nil
}
