package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/spool"
	"github.com/wandist/wandist/transport"
)

// A link's data streams: one per lane and direction. The lane's writer
// sends what its buffer hands out, in Data and DataBatch frames; the
// reader delivers them to local mailboxes, drops what was delivered before,
// and acknowledges.

func (l *link) dataReader(s transport.Stream) {
	d := l.p.d
	stop := context.AfterFunc(l.ctx, func() { unblock(s) })
	kind, lane, ok := l.readStreamInit(s)
	switch {
	case !ok:
		stop()
		s.Close()
		return
	case kind == wire.StreamPipes:
		defer s.Close()
		defer stop()
		l.pm.read(s) // pipes.go
		return
	}
	defer s.Close()
	defer stop()
	r := wire.NewReader(s, d.cfg.Link.MaxFrameSize)
	var m wire.Data
	var b wire.DataBatch
	var mc mailboxCache
	frames := 0
	for {
		t, body, err := r.ReadFrame()
		if err != nil {
			if l.ctx.Err() == nil && !errors.Is(err, io.EOF) {
				var fe *wire.FrameError
				if errors.As(err, &fe) {
					l.protocolError(err)
					return
				}
				l.fail(fmt.Errorf("data read: %w", err))
			}
			return
		}
		// A sign of life for the keepalive, taken every 64 frames (a
		// clock reading per frame is not free): under bulk traffic that
		// is often enough, and otherwise the pings on the control stream
		// and the transport's count of bytes keep it fresh.
		// The last frame the reader holds: its delivery may write to the
		// client at once instead of waking the client's writer.
		last := r.Buffered() == 0
		if frames++; frames&63 == 1 {
			now := time.Now().UnixNano()
			l.lastRecv.Store(now)
			l.lastData.Store(now)
		}
		switch t {
		case wire.TypeData:
			if err := m.DecodeBody(body); err != nil {
				l.protocolError(err)
				return
			}
			d.metrics.received.Inc()
			if !l.onData(lane, &m, last, &mc) {
				return
			}
		case wire.TypeDataBatch:
			if lane == buffer.LaneDurable {
				l.protocolError(errors.New("DataBatch on the durable lane"))
				return
			}
			if err := b.DecodeBody(body); err != nil {
				l.protocolError(err)
				return
			}
			if !l.onBatch(lane, &b, &m, last, &mc) {
				return
			}
		default:
			l.protocolError(fmt.Errorf("unexpected %v on a data stream", t))
			return
		}
	}
}

// readStreamInit reads the StreamInit that opens a stream the peer opened
// (without reading ahead) and returns its kind and, for a data stream, its lane; false if
// the stream is not to be read (a protocol error was raised, or the link
// ended).
func (l *link) readStreamInit(s transport.Stream) (uint8, int, bool) {
	t, body, err := readFrameExact(s)
	if err != nil {
		var fe *wire.FrameError
		if errors.As(err, &fe) && l.ctx.Err() == nil {
			l.protocolError(fmt.Errorf("bad stream init: %w", err))
		}
		return 0, 0, false
	}
	var init wire.StreamInit
	if t != wire.TypeStreamInit || init.DecodeBody(body) != nil {
		l.protocolError(fmt.Errorf("bad stream init (%v)", t))
		return 0, 0, false
	}
	switch init.Kind {
	case wire.StreamPipes:
		if l.relayed() {
			l.protocolError(errors.New("a pipes stream on a relayed link"))
			return 0, 0, false
		}
		return init.Kind, 0, true
	case wire.StreamData:
	default:
		l.protocolError(fmt.Errorf("bad stream init: kind %d", init.Kind))
		return 0, 0, false
	}
	lane, ok := laneFromWire(init.Lane)
	if !ok {
		l.protocolError(fmt.Errorf("bad stream init (%v)", t))
	}
	return init.Kind, lane, ok
}

// onBatch delivers the messages of a DataBatch in order, each as onData
// does, through the reader's m (last: the batch is the last frame the
// reader holds); false when the reader must stop.
func (l *link) onBatch(lane int, b *wire.DataBatch, m *wire.Data, last bool, mc *mailboxCache) bool {
	if b.Seq > math.MaxUint64-uint64(len(b.Payloads)) && b.Seq-1 > math.MaxUint64-uint64(b.Payloads.Count()) {
		// Its Seqs would wrap past 2^64-1: the rest would pass as
		// at-most-once, without the duplicate check. (There are fewer
		// payloads than bytes: the first test spares the count.)
		l.protocolError(errors.New("DataBatch Seqs wrap past 2^64-1"))
		return false
	}
	seq, n := b.Seq, 0
	for rest := b.Payloads; len(rest) > 0; {
		var p []byte
		p, rest = rest.Next()
		*m = wire.Data{Seq: seq, Flags: b.Flags, To: b.To, From: b.From, Group: b.Group, Payload: p}
		n++
		if !l.onData(lane, m, last && len(rest) == 0, mc) {
			l.p.d.metrics.received.Add(float64(n))
			return false
		}
		if seq != 0 {
			seq++
		}
	}
	l.p.d.metrics.received.Add(float64(n))
	return true
}

// onData delivers one message received on lane (the reader's last
// buffered one if last), finding its mailbox through the reader's cache
// mc; it returns false when the reader must stop.
func (l *link) onData(lane int, m *wire.Data, last bool, mc *mailboxCache) bool {
	d := l.p.d
	stream := l.remoteInc
	if lane == buffer.LaneDurable {
		stream = l.remoteDurable
		// A durable message is not given up for want of a mailbox at
		// once: after a restart of this node, its clients need a moment
		// to reconnect and re-join their groups. The durable stream
		// waits (other lanes go on); past the grace it is dropped.
		if !d.waitDeliverable(l.ctx, l.p.id.Cluster, m) && l.ctx.Err() != nil {
			return false
		}
	}
	// local.inbox_full: hold: wait (before the delivery position
	// moves) until the mailbox's client has room; meanwhile this lane
	// is not read, so the message and those behind it stay in the
	// sender's buffer.
	if !d.holdForRoom(l.ctx, lane, m, mc) {
		return false
	}
	// A durable message is acknowledged only once it is written to its
	// client's connection and its position is on disk: a kill -9 of
	// this daemon between the two cannot lose it (the client drops the
	// redelivery that may follow).
	var handled func()
	var ref *confirmRef
	switch {
	case m.Seq == 0: // at-most-once
	case lane == buffer.LaneDurable:
		handled = l.durableHandled(stream, m.Seq)
	default:
		// Done, and acknowledged, once the client confirms it.
		ref = &confirmRef{p: l.p, inc: stream, lane: uint8(lane), seq: m.Seq}
	}
	ok, found := true, true
	dup := !l.p.acceptDelivery(stream, lane, m.Seq, func(floor uint64) {
		ok, found = d.deliverRemote(l.p.id, stream, floor, m, handled, ref, last, mc)
	})
	if !ok && ref != nil { // dealt with here (counted): done
		l.p.completeOne(ref.inc, lane, ref.seq)
	}
	if !found && m.Group == "" {
		// An address whose mailbox is gone: nothing to route it to.
		l.p.reportUndeliverable(1)
	}
	if dup {
		// Already delivered: its own delivery acks it (or, if that was
		// in an earlier run, the resume position told the sender).
		d.metrics.duplicates.Inc()
		l.p.duplicates.Add(1)
	}
	return true
}

// durableHandled returns what runs once a durable message is written to
// its client's connection: its position is written to disk, then it is
// acknowledged. A kill -9 of this daemon between the two cannot lose it
// (the client drops the redelivery that may follow).
func (l *link) durableHandled(stream, seq uint64) func() {
	d := l.p.d
	key := spool.RecvKey{Peer: l.p.nodeName(), Stream: stream}
	return func() {
		if d.spool == nil {
			l.ackLater(buffer.LaneDurable, seq)
			return
		}
		d.spool.SetReceived(key, seq, func(err error) {
			if err == nil {
				l.ackLater(buffer.LaneDurable, seq)
			}
		})
	}
}

// acceptDelivery checks a received sequence number against what was
// received on the lane (recvlane.go, for the reliable lanes) and records
// it; false means a duplicate. stream is the sender's incarnation (normal
// and high lanes) or its durable stream id (durable lane). deliver, given
// the lane's floor (every Seq up to it is done), runs under the lock so
// that two links racing during a replacement cannot reorder deliveries.
func (p *peer) acceptDelivery(stream uint64, lane int, seq uint64, deliver func(floor uint64)) bool {
	p.recvMu.Lock()
	defer p.recvMu.Unlock()
	if seq == 0 { // at-most-once
		deliver(0)
		return true
	}
	if lane == buffer.LaneDurable {
		if seq <= p.recvDurable[stream] {
			return false
		}
		p.recvDurable[stream] = seq
		deliver(seq - 1) // the durable lane delivers in order
		return true
	}
	if stream != p.recvInc {
		p.recvInc = stream
		p.recv = [2]recvLane{}
	}
	if !p.recv[lane].accept(seq) {
		return false
	}
	deliver(p.recv[lane].base)
	return true
}

// readFrameExact reads one small frame from r without reading past it.
func readFrameExact(r io.Reader) (wire.Type, []byte, error) {
	buf := make([]byte, wire.HeaderSize, wire.HeaderSize+64)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(buf[4:wire.HeaderSize]))
	if n > maxInitFrame {
		return 0, nil, &wire.FrameError{Type: wire.Type(buf[1]), Reason: fmt.Sprintf("%d bytes where at most %d are expected", n, maxInitFrame), Err: wire.ErrFrameTooLarge}
	}
	buf = append(buf, make([]byte, n)...)
	if _, err := io.ReadFull(r, buf[wire.HeaderSize:]); err != nil {
		return 0, nil, err
	}
	return wire.NewReader(bytes.NewReader(buf), maxInitFrame).ReadFrame() // checks the header
}

// maxInitFrame bounds the body of a StreamInit frame.
const maxInitFrame = 1024
