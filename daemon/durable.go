package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/spool"
	"github.com/wandist/wandist/wire"
)

// statusPending is returned by send when the answer comes later (durable).
const statusPending uint8 = 0xff

// openSpool opens the node's spool, if configured, and puts back into the
// peers' buffers every durable message that was not acknowledged.
func (d *Daemon) openSpool(key ed25519.PrivateKey) error {
	sc := d.cfg.Spool
	if sc.Dir == "" {
		return nil
	}
	secret := key.Seed()
	if sc.SecretFile != "" {
		b, err := os.ReadFile(sc.SecretFile)
		if err != nil {
			return fmt.Errorf("spool.secret_file: %w", err)
		}
		if len(b) < 16 {
			return fmt.Errorf("spool.secret_file %s: %d bytes, want at least 16", sc.SecretFile, len(b))
		}
		secret = b
	}
	sp, st, err := spool.Open(spool.Options{Dir: sc.Dir, MaxBytes: sc.MaxBytes, Key: spool.DeriveKey(secret), Logger: d.log.With("part", "spool")})
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, pr := range st.Problems {
		d.log.Error("spool: corrupt data skipped", "file", pr.File, "offset", pr.Offset, "reason", pr.Reason)
	}
	d.spool, d.durableID = sp, st.StreamID
	for k, seq := range st.Received {
		if p := d.peerByName(k.Peer); p != nil {
			p.recvDurable[k.Stream] = seq
		}
	}
	restored := 0
	for name, msgs := range st.Pending {
		p := d.peerByName(name)
		if p == nil {
			d.log.Warn("spool: durable messages for a node that is no longer a peer are kept, not sent", "peer", name, "messages", len(msgs))
			continue
		}
		for i := range msgs {
			sm := &msgs[i]
			bm := &buffer.Message{Seq: sm.Seq, Lane: buffer.LaneDurable, Flags: sm.Flags, To: sm.To, From: sm.From, Group: sm.Group, Payload: sm.Payload}
			if sm.Deadline != 0 {
				bm.Deadline = time.UnixMilli(sm.Deadline)
			}
			p.queue.Restore(bm)
			restored++
		}
	}
	for name, next := range st.NextSeq {
		if p := d.peerByName(name); p != nil {
			p.durNext = next
			p.queue.AdvanceSeq(buffer.LaneDurable, next)
		}
	}
	if restored > 0 {
		d.log.Info("spool: durable messages recovered", "messages", restored)
	}
	return nil
}

// peerByName finds a peer by "cluster/node".
func (d *Daemon) peerByName(name string) *peer {
	for _, p := range d.peerList() {
		if p.nodeName() == name {
			return p
		}
	}
	return nil
}

// sendDurable writes m to the spool and, once it is on disk, queues it for
// the link and confirms the send. The buffer's bounds are checked first, so
// a full buffer answers busy at once.
func (d *Daemon) sendDurable(p *peer, m *buffer.Message, reply func(uint8, string)) (uint8, string) {
	if err := p.queue.Room(len(m.Payload)); err != nil {
		d.metrics.busy.Inc()
		return wire.StatusBusy, fmt.Sprintf("buffer for %s is full", p.nodeName())
	}
	sm := &spool.Message{Peer: p.nodeName(), Flags: m.Flags, To: m.To, From: m.From, Group: m.Group, Payload: m.Payload}
	if !m.Deadline.IsZero() {
		sm.Deadline = m.Deadline.UnixMilli()
	}
	p.durMu.Lock()
	defer p.durMu.Unlock()
	if p.durNext == 0 {
		p.durNext = 1
	}
	sm.Seq, m.Seq = p.durNext, p.durNext
	p.durNext++
	// Done callbacks run in append order, so Restore sees increasing Seqs.
	d.spool.Append(sm, func(err error) {
		if err != nil {
			st := wire.StatusUnavailable
			if errors.Is(err, spool.ErrFull) || errors.Is(err, spool.ErrBusy) {
				st = wire.StatusBusy
			}
			d.metrics.spoolErrors.Inc()
			reply(st, fmt.Sprintf("durable send not stored: %v", err))
			return
		}
		p.queue.Restore(m)
		reply(wire.StatusOK, "")
	})
	return statusPending, ""
}

// durableWait bounds how long a durable message waits for its mailbox (or a
// local member of its group) to appear.
const durableWait = 10 * time.Second

// waitDeliverable waits until m has somewhere to go on this node, for at most
// durableWait; it reports whether it has.
func (d *Daemon) waitDeliverable(ctx context.Context, fromCluster string, m *wire.Data) bool {
	if m.Group != "" && !d.exported(m.Group, fromCluster) {
		return true // dropped on delivery; nothing to wait for
	}
	var timer *time.Timer
	for {
		ch := d.groups.Changed()
		if d.localMailbox(m.To, m.Group, nil) != nil {
			return true
		}
		if m.Group == "" {
			return false
		}
		if timer == nil {
			timer = time.NewTimer(durableWait)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
