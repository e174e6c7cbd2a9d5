package daemon

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/spool"
)

// maxSecretFile bounds spool.secret_file.
const maxSecretFile = 64 << 10

// openSpool opens the node's spool, if configured, and puts back into the
// peers' buffers every durable message that was not acknowledged.
func (d *Daemon) openSpool(key ed25519.PrivateKey) error {
	sc := d.cfg.Spool
	if sc.Dir == "" {
		return nil
	}
	secret := key.Seed()
	if sc.SecretFile != "" {
		b, err := auth.ReadSecretFile(sc.SecretFile, maxSecretFile)
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
			bm := &buffer.Message{Seq: sm.Seq, Lane: buffer.LaneDurable, Flags: sm.Flags, To: sm.To, From: sm.From, Group: sm.Group, Payload: sm.Payload,
				Headers: sm.Headers}
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

// sendDurable routes a durable send from a local client like send, writes
// it to the spool and, once it is on disk, queues it for the link. Every
// outcome, a refusal at once as much as the spool's answer later, comes
// through done, exactly once. The buffer's bounds are checked first, so a
// full buffer answers busy at once.
func (d *Daemon) sendDurable(m *wire.Send, now time.Time, rc *routeCache, done func(error)) {
	if err := d.checkSend(m); err != nil {
		done(err)
		return
	}
	t, all, err := d.route(m, rc)
	switch {
	case err != nil:
		done(err)
		return
	case all != nil:
		done(refuse(errBadRequest, "durable broadcast is not supported: send to each member"))
		return
	case d.isLocal(t):
		done(d.sendLocal(m, t))
		return
	}
	p, err := d.peerOf(rc, t)
	if err != nil {
		done(err)
		return
	}
	bm := outbound(m, now, t.Mailbox)
	bm.Lane, bm.Flags, bm.Payload = buffer.LaneDurable, wire.FlagDurable, append([]byte(nil), m.Payload...)
	bm.Headers = bytes.Clone(m.Headers) // Restore takes the message as it is: nothing aliases the read buffer
	d.spoolDurable(p, &bm, done)
}

// spoolDurable gives m a durable Seq towards p, appends it to the spool
// and, once it is on disk, queues it; done has the outcome.
func (d *Daemon) spoolDurable(p *peer, m *buffer.Message, done func(error)) {
	if err := p.queue.Room(len(m.Payload) + len(m.Headers)); err != nil {
		d.metrics.busy.Inc()
		done(refuse(errBusy, "buffer for %s is full", p.nodeName()))
		return
	}
	sm := &spool.Message{Peer: p.nodeName(), Flags: m.Flags, To: m.To, From: m.From, Group: m.Group, Payload: m.Payload, Headers: m.Headers}
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
			kind := errUnavailable
			if errors.Is(err, spool.ErrFull) || errors.Is(err, spool.ErrBusy) {
				kind = errBusy
			}
			d.metrics.spoolErrors.Inc()
			done(refuse(kind, "durable send not stored: %v", err))
			return
		}
		p.queue.Restore(m)
		done(nil)
	})
}
