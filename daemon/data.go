package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/spool"
	"github.com/wandist/wandist/transport"
	"github.com/wandist/wandist/wire"
)

// A link's data streams: one per lane and direction. The lane's writer
// sends what its buffer hands out, in Data and DataBatch frames; the
// reader delivers them to local mailboxes, drops what was delivered before,
// and acknowledges.

func (l *link) dataReader(s transport.Stream) {
	d := l.p.d
	defer s.Close()
	stop := context.AfterFunc(l.ctx, func() { unblock(s) })
	defer stop()
	r := wire.NewReader(s, d.cfg.Link.MaxFrameSize)
	t, body, err := r.ReadFrame()
	if err != nil {
		return
	}
	var init wire.StreamInit
	if t != wire.TypeStreamInit || init.DecodeBody(body) != nil || init.Kind != wire.StreamData || int(init.Lane) >= buffer.NumLanes {
		l.protocolError(fmt.Errorf("bad stream init (%v)", t))
		return
	}
	lane := int(init.Lane)
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
		// A sign of life for the keepalive, taken every 64 frames: under
		// bulk traffic that is often enough, and otherwise the pings on
		// the control stream keep it fresh (time.Now per frame cost 5 %
		// of the whole path).
		// The last frame the reader holds: its delivery may write to the
		// client at once instead of waking the client's writer.
		last := r.Buffered() == 0
		if frames++; frames&63 == 1 {
			l.lastRecv.Store(time.Now().UnixNano())
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
			seq, n := b.Seq, 0
			for rest := b.Payloads; len(rest) > 0; {
				var p []byte
				p, rest = rest.Next()
				m = wire.Data{Seq: seq, Flags: b.Flags, To: b.To, From: b.From, Group: b.Group, Payload: p}
				n++
				if !l.onData(lane, &m, last && len(rest) == 0, &mc) {
					d.metrics.received.Add(float64(n))
					return
				}
				if seq != 0 {
					seq++
				}
			}
			d.metrics.received.Add(float64(n))
		default:
			l.protocolError(fmt.Errorf("unexpected %v on a data stream", t))
			return
		}
	}
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
	if !d.holdForRoom(l.ctx, m, mc) {
		return false
	}
	// A durable message is acknowledged only once it is written to its
	// client's connection and its position is on disk: a kill -9 of
	// this daemon between the two cannot lose it (the client drops the
	// redelivery that may follow).
	var handled func()
	if lane == buffer.LaneDurable && m.Seq != 0 {
		seq, key := m.Seq, spool.RecvKey{Peer: l.p.nodeName(), Stream: stream}
		handled = func() {
			if d.spool == nil {
				l.ackLater(lane, seq)
				return
			}
			d.spool.SetReceived(key, seq, func(err error) {
				if err == nil {
					l.ackLater(lane, seq)
				}
			})
		}
	}
	dup := !l.p.acceptDelivery(stream, lane, m.Seq, func() {
		d.deliverRemote(l.p.id, stream, m, handled, last, mc)
	})
	if dup {
		// Already delivered: its own delivery acks it (or, if that was
		// in an earlier run, the resume position told the sender).
		d.metrics.duplicates.Inc()
		l.p.duplicates.Add(1)
		return true
	}
	if m.Seq != 0 && handled == nil {
		l.ackLater(lane, m.Seq)
	}
	return true
}

// dataWriter sends the lane's queued messages on the link's own data stream,
// a batch per write.
func (l *link) dataWriter(lane int) {
	q := l.p.queue
	s, err := l.conn.OpenStream(l.ctx)
	if err != nil {
		l.fail(fmt.Errorf("open data stream: %w", err))
		return
	}
	defer s.Close()
	stop := context.AfterFunc(l.ctx, func() { unblock(s) })
	defer stop()
	// The buffer grows with the batches: an idle lane holds a few bytes.
	buf := wire.AppendFrame(nil, &wire.StreamInit{Kind: wire.StreamData, Lane: uint8(lane)})
	if _, err := s.Write(buf); err != nil {
		l.fail(fmt.Errorf("data write: %w", err))
		return
	}
	var batch []*buffer.Message // grows to maxBatch under load; an idle lane holds none
	for {
		batch = q.Next(l.gen, lane, maxBatch, batch[:0])
		if len(batch) == 0 {
			select {
			case <-q.Notify(lane):
				continue
			case <-l.ctx.Done():
				return
			}
		}
		now := l.p.d.now()
		buf = buf[:0]
		bat, next := -1, uint64(0) // the DataBatch frame that ends buf (offset, -1: none), the Seq it takes next
		var hdr wire.DataBatch
		for i, m := range batch {
			var ttl uint64
			if !m.Deadline.IsZero() {
				rem := m.Deadline.Sub(now)
				if rem <= 0 {
					// Expired between Next and here: never crosses the WAN.
					q.CountDrop(buffer.DropExpired)
					batch[i] = nil
					continue
				}
				ttl = uint64((rem + time.Millisecond - 1) / time.Millisecond)
			}
			batch[i] = nil
			if ttl == 0 && m.Corr == 0 && lane != buffer.LaneDurable {
				// A plain message: it extends the DataBatch frame before it
				// when it follows it (same header, the next Seq) and the
				// frame has room, else starts one.
				if bat < 0 || m.Seq != next || len(buf)-bat >= wire.MaxBatchBody ||
					m.Flags != hdr.Flags || m.To != hdr.To || m.From != hdr.From || m.Group != hdr.Group {
					hdr = wire.DataBatch{Seq: m.Seq, Flags: m.Flags, To: m.To, From: m.From, Group: m.Group}
					bat = len(buf)
					buf = hdr.AppendFrame(buf) // no payload yet
				}
				buf = wire.AppendBatchPayload(buf, bat, m.Payload)
				if next = m.Seq; m.Seq != 0 {
					next++
				}
				continue
			}
			bat = -1
			d := wire.Data{Seq: m.Seq, Flags: m.Flags, To: m.To, From: m.From, TTL: ttl, Group: m.Group, Payload: m.Payload, Corr: m.Corr}
			buf = d.AppendFrame(buf)
		}
		q.Done() // the batch is encoded: its messages' blocks may be reused
		if _, err := s.Write(buf); err != nil {
			l.fail(fmt.Errorf("data write: %w", err))
			return
		}
		l.p.d.metrics.sent.Add(float64(len(batch)))
		if cap(buf) > maxKeptWriteBuffer {
			buf = nil
		}
	}
}
