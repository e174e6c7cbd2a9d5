package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/internal/wire"
)

// maxBatch is how many messages a data writer takes from the queue per write.
const maxBatch = 1024

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
	buf := wire.AppendFrame(nil, &wire.StreamInit{Kind: wire.StreamData, Lane: laneToWire(lane)})
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
			if ttl == 0 && m.Corr == 0 && m.Route == nil && len(m.Headers) == 0 && lane != buffer.LaneDurable {
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
			d := wire.Data{Seq: m.Seq, Flags: m.Flags, To: m.To, From: m.From, TTL: ttl, Group: m.Group, Payload: m.Payload, Corr: m.Corr,
				Headers: m.Headers}
			if r := m.Route; r != nil {
				d.Flags |= wire.FlagRouted
				d.Strategy, d.Key, d.OriginCluster, d.OriginNode = r.Strategy, r.Key, r.OriginCluster, r.OriginNode
			}
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

// maxKeptWriteBuffer bounds the write buffer a lane writer keeps between
// writes (see the client package's constant of the same name; a local
// client's writer uses pooled chunks, outBuf).
const maxKeptWriteBuffer = 16 << 20
