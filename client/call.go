package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wandist/wandist/internal/wire"
)

// calls routes replies to the Calls waiting for them.
type calls struct {
	mu      sync.Mutex
	mb      *Mailbox                 // the client's reply mailbox, opened by the first Call
	waiting map[uint64]chan *Message // by correlation id
	next    uint64
	late    uint64 // replies that came after their Call gave up
}

// replyMailbox returns the client's reply mailbox, opening it once.
func (c *Client) replyMailbox(ctx context.Context) (*Mailbox, error) {
	c.calls.mu.Lock()
	mb := c.calls.mb
	c.calls.mu.Unlock()
	if mb != nil {
		return mb, nil
	}
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		return nil, err
	}
	c.calls.mu.Lock()
	defer c.calls.mu.Unlock()
	if c.calls.mb != nil { // another Call won the race
		go mb.Close(context.Background())
		return c.calls.mb, nil
	}
	c.calls.mb = mb
	return mb, nil
}

// Call sends payload as a request to target and waits for the reply. The
// context's deadline travels with the request as its TTL (so the server can
// drop a request nobody waits for any more); without a deadline the call
// waits until ctx ends. A timeout returns ErrTimeout, which is a net.Error
// whose Timeout() is true. A server that never answers costs the caller
// nothing once ctx ends.
func (c *Client) Call(ctx context.Context, target Target, payload []byte, opts ...SendOption) (*Message, error) {
	mb, err := c.replyMailbox(ctx)
	if err != nil {
		return nil, err
	}
	c.calls.mu.Lock()
	if c.calls.waiting == nil {
		c.calls.waiting = map[uint64]chan *Message{}
	}
	c.calls.next++
	corr := c.calls.next
	ch := make(chan *Message, 1)
	c.calls.waiting[corr] = ch
	c.calls.mu.Unlock()
	defer func() {
		c.calls.mu.Lock()
		delete(c.calls.waiting, corr)
		c.calls.mu.Unlock()
	}()
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return nil, ErrTimeout
		}
		opts = append(opts, WithTTL(left))
	}
	req := c.reqSeq.Add(1)
	var s wire.Send
	if err := c.buildSend(&s, req, mb.id(), target, payload, opts); err != nil {
		return nil, err
	}
	s.Corr = corr
	if s.Flags&wire.FlagDurable != 0 {
		// A durable request is answered once it is on disk.
		if err := c.call(ctx, req, &s); err != nil {
			return nil, err
		}
		return c.awaitReply(ctx, ch, nil)
	}
	// Quiet: the daemon answers the request only if it fails (no route,
	// busy, ...), so a call costs no Result frame, wake-up and write on
	// either side; a lost connection fails it like any pending request.
	s.Flags |= wire.FlagQuiet
	s.Req |= quietReq | callReq
	failed := make(chan error, 1)
	c.pmu.Lock()
	c.pending[s.Req] = failed
	c.pmu.Unlock()
	defer func() {
		c.pmu.Lock()
		delete(c.pending, s.Req)
		c.pmu.Unlock()
	}()
	if err := c.enqueueNow(s.AppendFrame); err != nil {
		return nil, err
	}
	return c.awaitReply(ctx, ch, failed)
}

// awaitReply waits for a Call's reply on ch, or its failure on failed.
func (c *Client) awaitReply(ctx context.Context, ch <-chan *Message, failed <-chan error) (*Message, error) {
	select {
	case m := <-ch:
		return m, nil
	case err := <-failed:
		return nil, err
	case <-ctx.Done():
		return nil, ctxError(ctx.Err())
	case <-c.done:
		return nil, ErrClosed
	}
}

// CallGroup sends a request to a member of group (see WithKey and
// WithStrategy) and waits for its reply.
func (c *Client) CallGroup(ctx context.Context, group string, payload []byte, opts ...SendOption) (*Message, error) {
	return c.Call(ctx, Target{Group: group}, payload, opts...)
}

// routeReply hands a reply to its waiting Call; it reports whether d was a
// reply for this client's reply mailbox.
func (c *Client) routeReply(d *wire.Deliver) bool {
	if d.Flags&wire.FlagReply == 0 || d.Corr == 0 {
		return false
	}
	c.calls.mu.Lock()
	defer c.calls.mu.Unlock()
	if c.calls.mb == nil || d.Mailbox != c.calls.mb.id() {
		return false
	}
	if ch := c.calls.waiting[d.Corr]; ch != nil {
		ch <- newMessage(&c.alloc, d, nil)
		delete(c.calls.waiting, d.Corr)
	} else {
		c.calls.late++
	}
	return true
}

// LateReplies returns how many replies arrived after their Call had given up.
func (c *Client) LateReplies() uint64 {
	c.calls.mu.Lock()
	defer c.calls.mu.Unlock()
	return c.calls.late
}

// Reply answers a request (a message received from Call) with payload. The
// reply carries what is left of the request's TTL; a request whose TTL has
// run out is not answered (ErrTimeout): its caller gave up.
//
// A non-durable reply is quiet, as SendAsync's sends are: Reply returns once
// the reply is queued (written to the daemon's socket at once when the
// client's writer is idle), and the daemon answers it only if it refuses it;
// such a refusal is collected for Flush, and the caller's Call ends at its
// deadline. A durable reply waits until it is on the daemon's disk.
func (m *Message) Reply(ctx context.Context, payload []byte, opts ...SendOption) error {
	if m.corr == 0 || m.mb == nil {
		return &Error{Kind: ErrBadRequest, Message: "the message is not a request (it was not sent with Call)"}
	}
	if !m.deadline.IsZero() {
		left := time.Until(m.deadline)
		if left <= 0 {
			return ErrTimeout
		}
		opts = append(opts, WithTTL(left))
	}
	c := m.mb.c
	req := c.reqSeq.Add(1)
	var s wire.Send
	err := c.buildSend(&s, req, m.mb.id(), Target{Addr: m.From}, payload, opts)
	if err != nil {
		return err
	}
	s.Corr, s.Flags = m.corr, s.Flags|wire.FlagReply
	if s.Flags&wire.FlagDurable != 0 {
		return c.callWith(ctx, req, &s, true)
	}
	// Quiet: no Result frame per reply (a write and a wake-up in the
	// daemon, a read and a wake-up here); a failure goes to Flush.
	s.Flags |= wire.FlagQuiet
	s.Req |= quietReq
	c.quietSent.Add(1) // before the frame is queued (see SendAsync)
	return c.enqueueNow(s.AppendFrame)
}

// IsRequest reports whether the message was sent with Call and expects a Reply.
func (m *Message) IsRequest() bool { return m.corr != 0 }

// Handler handles one received message; for a request it calls m.Reply.
type Handler func(ctx context.Context, m *Message)

// Serve receives messages and runs h for each, with at most concurrency
// handlers at once (1 or less: one at a time, in order), until ctx ends or
// the client or the mailbox closes. It returns nil after a Close (of the
// client or the mailbox), else why it stopped: ctx's error, or why the
// client ended (ErrUnavailable with NoReconnect, ...). A handler gets a
// context that ends at the request's deadline (when it has one) or with
// Serve's.
func (m *Mailbox) Serve(ctx context.Context, concurrency int, h Handler) error {
	if concurrency < 1 {
		concurrency = 1
	}
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		msg, err := m.Receive(ctx)
		if errors.Is(err, ErrClosed) { // a normal Close (an ended client reports its own error)
			return nil
		}
		if err != nil {
			return err
		}
		run := func() {
			hctx, cancel := ctx, context.CancelFunc(func() {})
			if !msg.deadline.IsZero() {
				hctx, cancel = context.WithDeadline(ctx, msg.deadline)
			}
			defer cancel()
			h(hctx, msg)
		}
		if concurrency == 1 {
			run()
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			run()
		})
	}
}

// newMessage makes a Message from a delivery (payload copied), carved out
// of a's blocks; a nil a allocates them one by one.
func newMessage(a *msgAlloc, d *wire.Deliver, mb *Mailbox) *Message {
	msg := a.message()
	*msg = Message{From: Addr{Cluster: d.FromCluster, Node: d.FromNode, Mailbox: d.From}, Group: d.Group,
		Payload: a.payload(d.Payload), Headers: parseHeaders(d.Headers), corr: d.Corr, mb: mb}
	if d.TTL > 0 {
		msg.deadline = time.Now().Add(wire.TTLDuration(d.TTL))
	}
	if d.Flags&wire.FlagReply != 0 {
		msg.corr = 0 // a reply is not itself a request
	}
	return msg
}

// Block sizes of a msgAlloc.
const (
	msgBlock     = 32       // Messages per allocation
	payloadBlock = 16 << 10 // bytes per payload block
	// payloadOwn is the payload size from which a payload gets its own
	// allocation rather than a piece of a block.
	payloadOwn = 1 << 10
)

// msgAlloc carves the Messages of deliveries and their small payloads out
// of larger blocks: one allocation per msgBlock Messages and about one per
// payloadBlock bytes of payload, instead of two per delivery. A block stays
// in memory while any Message or payload carved from it is referenced (see
// Message.Payload). Owned by the goroutine that dispatches deliveries.
type msgAlloc struct {
	msgs []Message // not yet handed out
	buf  []byte    // free part of the current payload block
}

func (a *msgAlloc) message() *Message {
	if a == nil {
		return new(Message)
	}
	if len(a.msgs) == 0 {
		a.msgs = make([]Message, msgBlock)
	}
	m := &a.msgs[0]
	a.msgs = a.msgs[1:]
	return m
}

// payload returns a copy of p whose capacity is its length, so that an
// append by its owner reallocates instead of writing into a neighbour.
func (a *msgAlloc) payload(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	if a == nil || len(p) >= payloadOwn {
		return append([]byte(nil), p...)
	}
	if len(a.buf) < len(p) {
		a.buf = make([]byte, payloadBlock)
	}
	b := a.buf[:len(p):len(p)]
	copy(b, p)
	a.buf = a.buf[len(p):]
	return b
}
