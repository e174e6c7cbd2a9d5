// Package client is the Go SDK of wandist: a service connects to its local
// wandistd over the Unix socket, opens mailboxes (addresses like Erlang pids:
// cluster/node/id), joins groups, receives messages, and sends to an address
// or a group anywhere in the linked clusters.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wandist/wandist/wire"
)

// DefaultSocket is used when neither Options.Socket nor WANDIST_SOCKET is set.
const DefaultSocket = "/run/wandist/wandist.sock"

// Options configure Connect. The zero value works.
type Options struct {
	// Socket is the daemon's socket path; default $WANDIST_SOCKET, else DefaultSocket.
	Socket string
	// Name identifies the client in the daemon's logs; default the program name.
	Name string
	// Token is the shared secret, when the daemon requires one.
	Token string
	// InboxBytes bounds the payload bytes waiting in one mailbox for
	// Receive; past it, deliveries to that mailbox are dropped and counted
	// (Mailbox.Dropped). Default 64 MiB.
	InboxBytes int
}

// Client is a connection to the local daemon. Safe for concurrent use.
type Client struct {
	conn       net.Conn
	inboxBytes int
	cluster    string
	node       string
	maxMsg     int

	reqSeq atomic.Uint64

	wmu    sync.Mutex    // guards wbuf, closed
	wbuf   []byte        // frames waiting for the writer
	wwake  chan struct{} // capacity 1
	closed bool

	pmu      sync.Mutex               // guards pending, asyncErr, asyncN
	pending  map[uint64]chan error    // requests waiting for their answer
	opened   map[uint64]chan *Mailbox // Open requests
	asyncN   int                      // async sends not yet answered
	asyncErr error                    // first failure of an async send since the last Flush
	asyncCh  chan struct{}            // closed when asyncN drops to 0

	mmu       sync.Mutex // guards mailboxes
	mailboxes map[uint64]*Mailbox

	done    chan struct{}
	doneErr error // set before done is closed
	wg      sync.WaitGroup
	once    sync.Once
}

// Connect dials the daemon and completes the hello exchange.
func Connect(ctx context.Context, o Options) (*Client, error) {
	path := o.Socket
	if path == "" {
		path = os.Getenv("WANDIST_SOCKET")
	}
	if path == "" {
		path = DefaultSocket
	}
	if o.Name == "" && len(os.Args) > 0 {
		o.Name = os.Args[0]
	}
	if o.InboxBytes <= 0 {
		o.InboxBytes = 64 << 20
	}
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	if _, err := conn.Write(wire.AppendFrame(nil, &wire.ClientHello{Version: wire.LocalVersion, Name: o.Name, Token: o.Token})); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: hello: %v", ErrUnavailable, err)
	}
	r := wire.NewReader(conn, 64<<20)
	t, body, err := r.ReadFrame()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: hello: %v", ErrUnavailable, err)
	}
	var sh wire.ServerHello
	if t != wire.TypeServerHello || sh.DecodeBody(body) != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: daemon answered %v instead of ServerHello", ErrUnavailable, t)
	}
	if sh.Status != wire.StatusOK {
		conn.Close()
		return nil, statusError(sh.Status, sh.Message)
	}
	_ = conn.SetDeadline(time.Time{})
	c := &Client{
		conn: conn, inboxBytes: o.InboxBytes, cluster: sh.Cluster, node: sh.Node, maxMsg: int(sh.MaxMessage),
		wwake: make(chan struct{}, 1), pending: map[uint64]chan error{}, opened: map[uint64]chan *Mailbox{},
		mailboxes: map[uint64]*Mailbox{}, done: make(chan struct{}),
	}
	c.wg.Go(c.writer)
	c.wg.Go(func() { c.reader(r) })
	return c, nil
}

// Cluster returns the local daemon's cluster.
func (c *Client) Cluster() string { return c.cluster }

// Node returns the local daemon's node name.
func (c *Client) Node() string { return c.node }

// MaxMessage is the largest payload the daemon accepts.
func (c *Client) MaxMessage() int { return c.maxMsg }

// Close disconnects; the daemon removes this client's mailboxes from their
// groups. Pending calls fail with ErrClosed. Idempotent.
func (c *Client) Close() error {
	c.shutdown(ErrClosed)
	c.wg.Wait()
	return nil
}

func (c *Client) shutdown(err error) {
	c.once.Do(func() {
		c.doneErr = err
		c.wmu.Lock()
		c.closed = true
		c.wmu.Unlock()
		close(c.done)
		c.conn.Close()
		c.pmu.Lock()
		for req, ch := range c.pending {
			ch <- err
			delete(c.pending, req)
		}
		for req, ch := range c.opened {
			close(ch)
			delete(c.opened, req)
		}
		if c.asyncErr == nil && c.asyncN > 0 {
			c.asyncErr = err
		}
		c.asyncN = 0
		if c.asyncCh != nil {
			close(c.asyncCh)
			c.asyncCh = nil
		}
		c.pmu.Unlock()
		c.mmu.Lock()
		for _, mb := range c.mailboxes {
			mb.closeInbox()
		}
		c.mmu.Unlock()
	})
}

// Done is closed when the connection to the daemon ends.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the client ended (nil while it runs).
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.doneErr
	default:
		return nil
	}
}

// enqueue hands a frame to the writer; it never blocks.
func (c *Client) enqueue(m wire.Message) error {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return ErrClosed
	}
	c.wbuf = wire.AppendFrame(c.wbuf, m)
	c.wmu.Unlock()
	select {
	case c.wwake <- struct{}{}:
	default:
	}
	return nil
}

// writer owns the socket's writes: it drains wbuf and writes it at once.
func (c *Client) writer() {
	var out []byte
	for {
		select {
		case <-c.wwake:
		case <-c.done:
			return
		}
		c.wmu.Lock()
		out, c.wbuf = c.wbuf, out[:0]
		c.wmu.Unlock()
		if len(out) == 0 {
			continue
		}
		if _, err := c.conn.Write(out); err != nil {
			c.shutdown(fmt.Errorf("%w: write: %v", ErrUnavailable, err))
			return
		}
		if cap(out) > 4<<20 {
			out = nil
		}
	}
}

func (c *Client) reader(r *wire.Reader) {
	var d wire.Deliver
	for {
		t, body, err := r.ReadFrame()
		if err != nil {
			c.shutdown(fmt.Errorf("%w: %v", ErrUnavailable, err))
			return
		}
		switch t {
		case wire.TypeDeliver:
			if d.DecodeBody(body) != nil {
				continue
			}
			c.mmu.Lock()
			mb := c.mailboxes[d.Mailbox]
			c.mmu.Unlock()
			if mb != nil {
				mb.push(&d)
			}
		case wire.TypeResult:
			var res wire.Result
			if res.DecodeBody(body) != nil {
				continue
			}
			c.answer(res.Req, statusError(res.Status, res.Message))
		case wire.TypeOpened:
			var o wire.Opened
			if o.DecodeBody(body) != nil {
				continue
			}
			c.pmu.Lock()
			ch := c.opened[o.Req]
			delete(c.opened, o.Req)
			c.pmu.Unlock()
			if ch != nil {
				ch <- c.newMailbox(o.Mailbox)
			}
		}
	}
}

// answer completes a request: a waiting call, or an async send.
func (c *Client) answer(req uint64, err error) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if ch, ok := c.pending[req]; ok {
		delete(c.pending, req)
		if ch != nil {
			ch <- err
			return
		}
		// an async send
		if err != nil && c.asyncErr == nil {
			c.asyncErr = err
		}
		c.asyncN--
		if c.asyncN == 0 && c.asyncCh != nil {
			close(c.asyncCh)
			c.asyncCh = nil
		}
	}
}

// call sends a request and waits for its Result.
func (c *Client) call(ctx context.Context, req uint64, m wire.Message) error {
	ch := make(chan error, 1)
	c.pmu.Lock()
	c.pending[req] = ch
	c.pmu.Unlock()
	if err := c.enqueue(m); err != nil {
		c.pmu.Lock()
		delete(c.pending, req)
		c.pmu.Unlock()
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		c.pmu.Lock()
		delete(c.pending, req)
		c.pmu.Unlock()
		return ctxError(ctx.Err())
	}
}

// NewMailbox opens a mailbox on the local daemon.
func (c *Client) NewMailbox(ctx context.Context) (*Mailbox, error) {
	req := c.reqSeq.Add(1)
	ch := make(chan *Mailbox, 1)
	c.pmu.Lock()
	c.opened[req] = ch
	c.pmu.Unlock()
	if err := c.enqueue(&wire.Open{Req: req}); err != nil {
		return nil, err
	}
	select {
	case mb, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		return mb, nil
	case <-ctx.Done():
		c.pmu.Lock()
		delete(c.opened, req)
		c.pmu.Unlock()
		return nil, ctxError(ctx.Err())
	}
}

func (c *Client) newMailbox(id uint64) *Mailbox {
	mb := &Mailbox{c: c, addr: Addr{Cluster: c.cluster, Node: c.node, Mailbox: id}, wake: make(chan struct{}, 1), max: c.inboxBytes}
	c.mmu.Lock()
	c.mailboxes[id] = mb
	c.mmu.Unlock()
	return mb
}

var errNoTarget = errors.New("client: send needs a target address or group")
