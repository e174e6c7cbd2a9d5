package transport

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// muxWriteChunk bounds the bytes handed to yamux per Write call, so that a
// single frame never has to cross a slow link within the write timeout.
const muxWriteChunk = 64 << 10

// muxStream is a Stream of a muxConn.
type muxStream struct {
	c        *muxConn
	s        *yamux.Stream
	incoming bool        // opened by the peer: holds a slot of MaxIncomingStreams
	peerDone atomic.Bool // the peer's half ended: end-of-stream or reset seen
	closed   atomic.Bool
}

func (s *muxStream) Read(b []byte) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	n, err := s.s.Read(b)
	if err != nil {
		if err == io.EOF || errors.Is(err, yamux.ErrConnectionReset) {
			s.peerDone.Store(true)
		}
		err = s.mapErr(err)
	}
	return n, err
}

func (s *muxStream) Write(b []byte) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	total := 0
	for total < len(b) {
		end := min(len(b), total+muxWriteChunk)
		n, err := s.s.Write(b[total:end])
		total += n
		if err != nil {
			return total, s.mapErr(err)
		}
	}
	return total, nil
}

// mapErr converts yamux stream errors to this package's conventions.
func (s *muxStream) mapErr(err error) error {
	switch {
	case s.closed.Load():
		return ErrClosed
	case errors.Is(err, yamux.ErrTimeout):
		return deadlineError{}
	case errors.Is(err, yamux.ErrConnectionReset) && !s.c.sess.IsClosed():
		return fmt.Errorf("%w: %w", ErrStreamReset, err)
	}
	// yamux reports a dead session as io.EOF on reads; s.c.mapErr turns
	// that into the Conn's Err.
	return s.c.mapErr(err)
}

// Close sends end-of-stream after the data written so far and stops local
// reads. yamux cannot refuse the peer's further data; it is discarded, and
// the stream is reset if the peer does not close its side within
// muxStreamCloseTimeout.
func (s *muxStream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.s.Close()
	s.s.SetReadDeadline(time.Unix(1, 0)) // wake blocked readers; they see closed
	if s.incoming {
		s.c.in.closed(s.s.StreamID(), s.peerDone.Load())
	}
	if err != nil && !s.c.sess.IsClosed() {
		return s.c.mapErr(err)
	}
	return nil
}

func (s *muxStream) SetDeadline(t time.Time) error      { return s.s.SetDeadline(t) }
func (s *muxStream) SetReadDeadline(t time.Time) error  { return s.s.SetReadDeadline(t) }
func (s *muxStream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// trackedConn is the TLS connection as yamux sees it. It remembers when data
// was last read and the first I/O error, and bounds Close.
type trackedConn struct {
	rst   rstWatcher // written frames; used by yamux's send loop only
	out   []byte     // a data frame's header held for its body; yamux's send loop only
	tc    *tls.Conn
	raw   net.Conn   // under tc
	batch *batchConn // under tc, when it batches writes; else nil
	start time.Time
	grace time.Duration // longest wait for sending close_notify

	lastRead atomic.Int64  // time.Since(start) of the last successful read
	received atomic.Uint64 // bytes read through TLS (plaintext: yamux frames)
	abrupt   atomic.Bool   // Close skips close_notify
	errOnce  sync.Once
	err      atomic.Pointer[error]
}

func newTrackedConn(tc *tls.Conn, raw net.Conn, grace time.Duration) *trackedConn {
	t := &trackedConn{tc: tc, raw: raw, start: time.Now(), grace: grace}
	t.batch, _ = tc.NetConn().(*batchConn)
	return t
}

func (t *trackedConn) Read(b []byte) (int, error) {
	n, err := t.tc.Read(b)
	if n > 0 {
		t.lastRead.Store(int64(time.Since(t.start)))
		t.received.Add(uint64(n))
	}
	if err != nil {
		t.record(err)
	}
	return n, err
}

// Write is called by yamux's send loop only. yamux writes a data frame's
// 12-byte header and then its body, in two calls: alone, the header would
// be a TLS record and a system call of its own. So a data header that
// announces a body is held and goes out with the start of the body, in one
// record; and the records of one frame reach the connection in one write
// (batchConn).
func (t *trackedConn) Write(b []byte) (int, error) {
	if len(t.out) == 0 && len(b) == yamuxHeaderSize && b[1] == yamuxTypeData && binary.BigEndian.Uint32(b[8:12]) > 0 {
		t.out = append(t.out, b...)
		return len(b), nil
	}
	if t.batch != nil {
		t.batch.begin()
	}
	var n int
	var err error
	if len(t.out) == 0 {
		n, err = t.seal(b)
	} else {
		// The header, then as much of the body as fills one full-size
		// TLS record (bounding the copy), then the rest as it is.
		k := min(len(b), maxCoalescedBody)
		held := len(t.out)
		t.out = append(t.out, b[:k]...)
		n, err = t.seal(t.out)
		n = max(n-held, 0)
		t.out = t.out[:0]
		if cap(t.out) > maxCoalescedBody+yamuxHeaderSize {
			t.out = nil
		}
		if err == nil && k < len(b) {
			var m int
			m, err = t.seal(b[k:])
			n += m
		}
	}
	if t.batch != nil {
		if ferr := t.batch.flush(); ferr != nil && err == nil {
			n, err = 0, ferr
		}
	}
	if err != nil {
		t.record(err)
	}
	return n, err
}

// maxCoalescedBody is how much of a data frame's body trackedConn.Write
// copies to send with its header: with the header, a TLS record's largest
// plaintext (16 KiB).
const maxCoalescedBody = 16<<10 - yamuxHeaderSize

// seal writes b through TLS and shows the written bytes to the reset watcher.
func (t *trackedConn) seal(b []byte) (int, error) {
	n, err := t.tc.Write(b)
	t.rst.observe(b[:n])
	return n, err
}

func (t *trackedConn) record(err error) {
	t.errOnce.Do(func() { t.err.Store(&err) })
}

// firstErr returns the first read or write error, if any.
func (t *trackedConn) firstErr() error {
	if p := t.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (t *trackedConn) sinceLastRead() time.Duration {
	return time.Since(t.start) - time.Duration(t.lastRead.Load())
}

// Close sends a TLS close_notify unless abrupt, but never waits longer than
// grace for a peer that does not read.
func (t *trackedConn) Close() error {
	if t.abrupt.Load() {
		t.raw.Close()
	}
	timer := time.AfterFunc(t.grace, func() { t.raw.Close() })
	err := t.tc.Close()
	timer.Stop()
	return err
}
