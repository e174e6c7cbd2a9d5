package spool

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Message is one durable message waiting for the peer's ack.
type Message struct {
	Peer     string // destination node "cluster/node"
	Seq      uint64 // per peer, assigned by the caller, increasing
	Flags    uint64
	To, From uint64
	Group    string
	Deadline int64 // unix milliseconds, 0 = no TTL
	Payload  []byte
	Headers  []byte // the message's header block (wire form), nil for none
}

// RecvKey is a source node and its durable stream id.
type RecvKey struct {
	Peer   string
	Stream uint64
}

// Problem is corruption found by Open and recovered around (the rest of the
// segment skipped, or the last segment truncated).
type Problem struct {
	File   string // path of the segment file
	Offset int64  // offset of the bad record (0 for a bad header)
	Reason string
}

// State is what Open recovered.
type State struct {
	StreamID uint64               // this spool's durable stream id: random nonzero at creation, the same at every reopen
	Pending  map[string][]Message // per peer: messages appended and not acked, in Seq order
	NextSeq  map[string]uint64    // per peer: 1 + the highest Seq ever appended (even if acked and its segment deleted); absent = 1
	Received map[RecvKey]uint64   // last SetReceived value per key
	Problems []Problem
}

// Stats are counters of a spool.
type Stats struct {
	Bytes      int64         // total size of the live segment files
	Segments   int           // live segment files, the active one included
	Appends    uint64        // messages made durable (done(nil) called)
	Fsyncs     uint64        // fsync calls for written records (a new segment's own header fsync is not counted)
	FsyncTotal time.Duration // time spent in those fsyncs
	LastFsync  time.Duration // duration of the latest fsync
	Err        string        // the error that broke the spool, if any
}

// op is one queued record.
type op struct {
	kind  byte   // recMessage, recAck or recReceived
	plain []byte // plaintext (type byte + body)
	peer  string // recMessage, recAck
	seq   uint64
	key   RecvKey // recReceived
	done  func(error)
}

// Spool is an open spool directory. Its methods are safe for concurrent use.
type Spool struct {
	log *slog.Logger

	mu     sync.Mutex
	queue  []op  // waiting for the writer
	spare  []op  // the writer's previous batch, reused
	queued int64 // plaintext bytes in queue
	closed bool
	broken error // set once by the writer, wraps ErrBroken

	lock     *os.File      // the directory's LOCK, held until the writer returns
	wake     chan struct{} // capacity 1: "the queue is not empty or the spool is closing"
	exited   chan struct{} // closed when the writer returns
	closeErr error         // the writer's final error, read after exited

	w *writer // owned by the writer goroutine

	statsMu sync.Mutex
	stats   Stats
}

// Append persists m (the payload is copied before Append returns) and calls
// done(nil) once it is on disk (after fsync), or done(err). done is called
// from the writer goroutine and must not block. Append never blocks: when
// more than MaxQueuedBytes would wait for the writer, done(ErrBusy) is called
// at once (synchronously), as are done(ErrClosed) after Close,
// done(ErrTooLarge) for a record whose plaintext exceeds MaxQueuedBytes, and
// the ErrBroken error of a broken spool. A nil done is allowed.
func (s *Spool) Append(m *Message, done func(error)) {
	plain := encodeMessage(m)
	if len(plain) > MaxQueuedBytes {
		if done != nil {
			done(fmt.Errorf("%w: message of %d bytes (limit %d)", ErrTooLarge, len(plain), MaxQueuedBytes))
		}
		return
	}
	s.enqueue(op{kind: recMessage, plain: plain, peer: m.Peer, seq: m.Seq, done: done}, true)
}

// Ack records that the peer acknowledged every Seq <= seq: those messages
// will not be recovered. It is written with the next batch and needs no
// fsync of its own (a lost ack only causes a resend, which receivers
// deduplicate). Acks are never refused for lack of room (they free it); after
// Close they are ignored.
func (s *Spool) Ack(peer string, seq uint64) {
	s.enqueue(op{kind: recAck, plain: encodeAck(peer, seq), peer: peer, seq: seq}, false)
}

// SetReceived persists a receive position and calls done(nil) after fsync,
// or done(err) with the same errors as Append. A nil done is allowed.
func (s *Spool) SetReceived(k RecvKey, seq uint64, done func(error)) {
	s.enqueue(op{kind: recReceived, plain: encodeReceived(k, seq), key: k, seq: seq, done: done}, true)
}

// enqueue queues o for the writer, or fails it at once. bounded ops are
// refused with ErrBusy past MaxQueuedBytes.
func (s *Spool) enqueue(o op, bounded bool) {
	n := int64(len(o.plain))
	s.mu.Lock()
	var err error
	switch {
	case s.closed:
		err = ErrClosed
	case s.broken != nil:
		err = s.broken
	case bounded && s.queued+n > MaxQueuedBytes:
		err = fmt.Errorf("%w: %d bytes waiting for the writer (limit %d)", ErrBusy, s.queued, MaxQueuedBytes)
	}
	if err != nil {
		s.mu.Unlock()
		if o.done != nil {
			o.done(err)
		}
		return
	}
	s.queue = append(s.queue, o)
	s.queued += n
	s.mu.Unlock()
	s.signal()
}

func (s *Spool) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the spool's counters.
func (s *Spool) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats
}

// Close writes what is queued (running its done callbacks), fsyncs, closes
// the file and waits for the writer goroutine. It is idempotent: later calls
// wait for the same end and return the same error, which is the error of the
// final fsync or close, or the error that broke the spool.
func (s *Spool) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.mu.Unlock()
		s.signal()
	} else {
		s.mu.Unlock()
	}
	<-s.exited
	return s.closeErr
}

// run is the writer goroutine: it takes the whole queue, writes it as one
// batch, and repeats until the spool is closed and the queue is empty.
func (s *Spool) run() {
	defer close(s.exited)
	defer s.lock.Close() // after the files: the next spool may open at once
	for {
		s.mu.Lock()
		batch := s.queue
		closed := s.closed
		if len(batch) > 0 {
			// Swap in the spare array, and forget it as spare: the queue and
			// the spare must never share an array, or an op enqueued during
			// the flush would overwrite the batch being written.
			s.queue, s.spare = s.spare[:0], nil
			s.queued = 0
		}
		s.mu.Unlock()
		if len(batch) > 0 {
			s.w.flush(batch)
			clear(batch) // drop the plaintexts and callbacks
			s.mu.Lock()
			s.spare = batch[:0]
			s.mu.Unlock()
			continue
		}
		if closed {
			s.closeErr = s.w.close()
			return
		}
		<-s.wake
	}
}

// setBroken records the error that broke the spool.
func (s *Spool) setBroken(err error) {
	s.mu.Lock()
	s.broken = err
	s.mu.Unlock()
	s.statsMu.Lock()
	s.stats.Err = err.Error()
	s.statsMu.Unlock()
	s.log.Error("spool broken", "err", err)
}
