package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
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
// writer picks each next member by the connections' congestion windows
// (pickNext), and the reader follows the chain: each member carries its
// chunks in order, so no reordering is needed. Closing the stream ends
// every member.

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
type stripedStream struct {
	members []*quicStream

	wmu   sync.Mutex
	wnext int     // guarded by wmu: the member of the next chunk written
	wrr   []int64 // guarded by wmu: the members' current weights (pickNext)
	werr  error   // guarded by wmu: a chunk was cut short; no more may follow

	rmu   sync.Mutex
	rnext int                  // guarded by rmu: the member of the chunk being read
	left  int                  // guarded by rmu: bytes of that chunk not read yet
	after int                  // guarded by rmu: the member of the chunk after it
	hdr   [chunkHeaderLen]byte // guarded by rmu: its header, as far as read
	hdrN  int                  // guarded by rmu: bytes of hdr read
	rerr  error                // guarded by rmu: the peer broke the chunk chain
}

// pickNext chooses the member of the chunk after the one being written:
// a smooth weighted round robin, each member weighted by its connection's
// congestion window, so that a connection that carries more gets more.
func (s *stripedStream) pickNext() int {
	if s.wrr == nil {
		s.wrr = make([]int64, len(s.members))
	}
	var total int64
	best := 0
	for i, m := range s.members {
		w := max(int64(m.c.qc.ConnectionStats().CongestionWindow), 1)
		s.wrr[i] += w
		total += w
		if s.wrr[i] > s.wrr[best] {
			best = i
		}
	}
	s.wrr[best] -= total
	return best
}

func (s *stripedStream) Write(b []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.werr != nil {
		return 0, s.werr
	}
	n := 0
	for len(b) > 0 {
		k := min(len(b), maxStripeChunk)
		buf := make([]byte, chunkHeaderLen+k)
		binary.BigEndian.PutUint16(buf, uint16(k))
		next := s.pickNext()
		buf[2] = byte(next)
		copy(buf[chunkHeaderLen:], b[:k])
		m := s.members[s.wnext]
		if w, err := m.Write(buf); err != nil {
			// A chunk cut short leaves the member unusable: no later
			// chunk may follow it.
			if w > 0 {
				s.werr = err
			}
			return n, err
		}
		s.wnext = next
		n += k
		b = b[k:]
	}
	return n, nil
}

func (s *stripedStream) Read(b []byte) (int, error) {
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

// Close ends every member, after the data written so far.
func (s *stripedStream) Close() error {
	var errs []error
	for _, m := range s.members {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

func (s *stripedStream) SetDeadline(t time.Time) error {
	var errs []error
	for _, m := range s.members {
		errs = append(errs, m.SetDeadline(t))
	}
	return errors.Join(errs...)
}

// openStriped opens a group of one stream on each of members and sends
// their headers.
func openStriped(ctx context.Context, id uint64, members []*quicConn) (*stripedStream, error) {
	s := &stripedStream{}
	for i, m := range members {
		ms, err := m.OpenStream(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		qs := ms.(*quicStream)
		s.members = append(s.members, qs)
		h := stripeHeader{id: id, index: i, size: len(members)}
		if _, err := qs.Write(h.encode()); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}
