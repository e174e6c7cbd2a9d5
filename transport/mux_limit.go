package transport

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// RefusedStreams is implemented by the Conns of this package. It counts the
// streams the peer opened beyond Options.MaxIncomingStreams that this side
// refused. QUIC Conns always report 0: there the peer cannot open them (see
// Options.MaxIncomingStreams).
type RefusedStreams interface {
	RefusedStreams() uint64
}

// The parts of yamux's framing (its spec.md, version 0) that rstWatcher
// reads: a 12-byte header of version, type, flags, stream id and length;
// only data frames carry a body, of length bytes.
const (
	yamuxHeaderSize       = 12
	yamuxTypeData         = 0
	yamuxTypeWindowUpdate = 1
	yamuxFlagRST          = 0x8
)

// rstWatcher follows the yamux frames this side writes, however the bytes
// are split into writes, and reports every stream reset it sends. yamux
// (v0.1.2) resets a stream the peer opened in two cases: its accept backlog
// was full (the refusal that muxConn counts), or this side closed the stream
// and the peer did not close its half within StreamCloseTimeout.
// It is used by one writer goroutine (yamux's send loop) at a time.
type rstWatcher struct {
	hdr   [yamuxHeaderSize]byte
	n     int    // header bytes collected
	body  uint32 // body bytes of the current frame still to skip
	onRST func(id uint32)
}

func (w *rstWatcher) observe(b []byte) {
	for len(b) > 0 {
		if w.body > 0 {
			k := len(b)
			if uint64(k) > uint64(w.body) {
				k = int(w.body)
			}
			w.body -= uint32(k)
			b = b[k:]
			continue
		}
		k := copy(w.hdr[w.n:], b)
		w.n += k
		b = b[k:]
		if w.n < yamuxHeaderSize {
			return
		}
		w.n = 0
		typ := w.hdr[1]
		flags := binary.BigEndian.Uint16(w.hdr[2:4])
		id := binary.BigEndian.Uint32(w.hdr[4:8])
		if typ == yamuxTypeData {
			w.body = binary.BigEndian.Uint32(w.hdr[8:12])
		}
		if (typ == yamuxTypeData || typ == yamuxTypeWindowUpdate) && flags&yamuxFlagRST != 0 && w.onRST != nil {
			w.onRST(id)
		}
	}
}

// incomingLimit enforces Options.MaxIncomingStreams on a muxConn.
//
// AcceptStream takes a slot before it takes a stream from yamux, and the
// stream's Close gives it back: at most MaxIncomingStreams streams opened by
// the peer are handed out and open at a time. While none is free, streams
// the peer opens wait in yamux's accept backlog (AcceptBacklog, also
// MaxIncomingStreams); yamux resets those beyond it, and the resets that
// rstWatcher sees for streams never handed out are counted as refusals.
type incomingLimit struct {
	slots      chan struct{}
	peerParity uint32 // stream ids the peer opens are odd (1) or even (0)
	refused    atomic.Uint64
	onRefused  func()

	mu sync.Mutex
	// handed holds the streams handed out by AcceptStream whose reset by
	// yamux's close timeout may still come: the zero time while open, the
	// time of Close once closed with the peer's half still open.
	handed map[uint32]time.Time
}

// handedRetention is how long a closed stream stays in handed: the close
// timeout, plus the time yamux may take to send its reset, plus slack.
func handedRetention(o Options) time.Duration {
	return muxStreamCloseTimeout + 2*o.IdleTimeout + 5*time.Second
}

func newIncomingLimit(max int, client bool, onRefused func()) *incomingLimit {
	l := &incomingLimit{
		slots:     make(chan struct{}, max),
		onRefused: onRefused,
		handed:    map[uint32]time.Time{},
	}
	if !client {
		l.peerParity = 1 // the yamux client (the dialer) opens odd ids
	}
	return l
}

func (l *incomingLimit) release() { <-l.slots }

// handOut records a stream given to the application.
func (l *incomingLimit) handOut(id uint32) {
	l.mu.Lock()
	l.handed[id] = time.Time{}
	l.mu.Unlock()
}

// closed records the local Close of a handed-out stream; peerDone says the
// peer's half had ended (end-of-stream or reset), so no reset can follow.
func (l *incomingLimit) closed(id uint32, peerDone bool) {
	l.mu.Lock()
	if peerDone {
		delete(l.handed, id)
	} else {
		l.handed[id] = time.Now()
	}
	l.mu.Unlock()
	l.release()
}

// sentRST is rstWatcher's callback.
func (l *incomingLimit) sentRST(id uint32) {
	if id%2 != l.peerParity {
		return // a stream this side opened
	}
	l.mu.Lock()
	_, handed := l.handed[id]
	delete(l.handed, id)
	l.mu.Unlock()
	if handed {
		return // yamux's close timeout, not a refusal
	}
	l.refused.Add(1)
	if l.onRefused != nil {
		l.onRefused()
	}
}

// prune forgets closed streams older than keep.
func (l *incomingLimit) prune(keep time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, at := range l.handed {
		if !at.IsZero() && now.Sub(at) > keep {
			delete(l.handed, id)
		}
	}
}
