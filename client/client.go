// Package client is the Go SDK of wandist: a service connects to its local
// wandistd over the Unix socket, opens mailboxes (addresses like Erlang pids:
// cluster/node/id), joins groups, receives messages, and sends to an address
// or a group anywhere in the linked clusters.
//
// A send picks its group member by Strategy (WithStrategy, WithKey: the
// owner of partition KeyHash(key) mod n); Call and Reply make
// request-reply; Members, Watch and WaitMembers show a group's members as
// the local daemon knows them (a Join on another node reaches it
// asynchronously: WaitMembers waits for it). Messages may carry Headers
// (WithHeaders, Message.Headers), bounded and checked at send time; the
// module github.com/wandist/wandist/client/otelwandist carries
// OpenTelemetry trace context in them.
package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wandist/wandist/internal/sockio"
	"github.com/wandist/wandist/internal/sockpath"
	"github.com/wandist/wandist/internal/wire"
)

// DefaultSocket is used when neither Options.Socket nor WANDIST_SOCKET is
// set, and it exists or $XDG_RUNTIME_DIR/wandist/wandist.sock (the socket
// of a user's own daemon) does not.
const DefaultSocket = sockpath.System

// Options configure Connect. The zero value works.
type Options struct {
	// Socket is the daemon's socket path; default $WANDIST_SOCKET, else
	// DefaultSocket (or $XDG_RUNTIME_DIR/wandist/wandist.sock, see there).
	Socket string
	// Name identifies the client in the daemon's logs; default the program name.
	Name string
	// Token is the shared secret, when the daemon requires one.
	Token string
	// InboxBytes bounds the payload bytes waiting in one mailbox for
	// Receive; past it, at-most-once deliveries to that mailbox are dropped
	// and counted (Mailbox.Dropped). A reliable or durable delivery is
	// never dropped: the client stops reading from the daemon until
	// Receive makes room (as HoldWhenFull does), and the daemon holds what
	// comes meanwhile (local.inbox_full). Default 64 MiB.
	InboxBytes int
	// HoldWhenFull makes a full mailbox hold up the connection for
	// at-most-once deliveries too, instead of dropping them: the client
	// stops reading from the daemon until Receive
	// makes room. With the daemon's local.inbox_full: hold, the messages
	// then wait in the sending node's buffer, where their backlog shows.
	// Every mailbox of this client waits meanwhile, and a Call made while
	// a mailbox is full waits for its reply until that mailbox has room:
	// give such a client one mailbox, read by a goroutine of its own.
	// Default false (at-most-once deliveries are dropped and counted).
	HoldWhenFull bool
	// NoReconnect makes the client end (Done, Err) when the connection to
	// the daemon is lost, instead of reconnecting.
	NoReconnect bool
	// ReconnectMax caps the wait between reconnect attempts (jittered,
	// doubling from 20ms); default 2s.
	ReconnectMax time.Duration
	// ExpectDaemonUID, when not 0, is the user id the daemon runs as: the
	// client talks to a socket served by that user only (not even by
	// root or its own user). $WANDIST_DAEMON_UID sets it too. When 0, the
	// client talks to a daemon of its own user, of root, or of the user
	// who owns the socket's directory if no other user but root may write
	// there or above. Any other socket is refused with ErrForeignSocket
	// before the hello: its token is never sent to another user's socket.
	ExpectDaemonUID int
}

// Client is a connection to the local daemon. Safe for concurrent use.
//
// When the daemon goes away (it restarted, or was killed) the client
// reconnects by itself, opens its mailboxes again and re-joins their groups.
// During the gap every call fails at once with ErrUnavailable (nothing is
// buffered inside the SDK), and calls that were waiting for an answer fail
// with ErrUnavailable too: the daemon may or may not have accepted them.
// After the reconnect a mailbox has a new address (Mailbox.Addr), as a
// process gets a new pid; its group memberships are back.
type Client struct {
	opts       Options
	path       string
	inboxBytes int
	cluster    string // fixed: a daemon at the same socket must be the same node
	node       string

	maxMsg     atomic.Int64
	noHeaders  atomic.Bool // the daemon speaks wire.LocalVersion2: no message headers
	reqSeq     atomic.Uint64
	duplicates atomic.Uint64
	reconnects atomic.Uint64

	wmu     sync.Mutex      // guards wbuf, batchAt, batch, conn, raw, writing, up, closed
	wbuf    []byte          // frames waiting for the writer
	batchAt int             // offset in wbuf of the SendBatch frame that ends it, -1: none (quiet sends extend it)
	batch   wire.SendBatch  // the header of that frame
	woken   bool            // a wake-up of the writer is pending (set by enqueueQuiet, cleared when the writer takes wbuf)
	conn    net.Conn        // the current connection
	raw     syscall.RawConn // conn's, for writes that must not block; nil if it has none
	writing bool            // the writer goroutine is writing what it took from wbuf
	up      bool            // conn is ready for requests
	closed  bool            // Close was called (or the client ended)
	wwake   chan struct{}   // capacity 1

	pmu      sync.Mutex                 // guards pending, lists, watchers, asyncErr, asyncN
	pending  map[uint64]chan error      // requests waiting for their answer
	lists    map[uint64]chan listAnswer // Members requests
	watchers map[uint64]*Watcher        // by the Req of their Watch
	opened   map[uint64]chan *Mailbox   // Open requests
	asyncN   int                        // async sends not yet answered
	asyncErr error                      // first failure of an async send since the last Flush
	asyncCh  chan struct{}              // closed when asyncN drops to 0

	quietSent   atomic.Uint64 // quiet async sends enqueued (answered only if they fail)
	quietSynced atomic.Uint64 // of those, how many a completed Sync (or a lost connection) settled

	mmu       sync.Mutex // guards mailboxes
	mailboxes map[uint64]*Mailbox

	// seen remembers the reliable and durable messages delivered to this
	// client (dedup.go): one the daemon delivers again is dropped here.
	// Owned by the reader.
	seen dedup
	// taken counts the deliveries on the current connection that the
	// reader dispatched (a batch counts one per message), counted before
	// the dispatch, so that Close confirms every message the application
	// may have received: written by the
	// reader, read by the confirmation timer too. acked is the count last
	// confirmed to the daemon (DeliverAck), and confirmArmed says the
	// timer will confirm, unconfirmedBytes sums the delivery frames' bytes
	// since the last confirmation, confirmDelay is the timer's delay
	// (defaultConfirmDelay; a test makes it longer): all guarded by wmu.
	taken            atomic.Uint64
	acked            uint64
	unconfirmedBytes int
	confirmArmed     bool
	confirmTimer     *time.Timer
	confirmDelay     time.Duration
	// takes counts the writer's takes of wbuf; closeFlushed, if not nil,
	// is closed once the writer has written take closeFlushAt, the one
	// with Close's last confirmation: guarded by wmu.
	takes        uint64
	closeFlushAt uint64
	closeFlushed chan struct{}
	// alloc makes the Messages of deliveries. Owned by the reader, like seen.
	alloc msgAlloc

	calls calls // request-reply

	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when the client has ended
	doneErr error         // set before done is closed
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
		path = sockpath.Client()
	}
	if o.Name == "" && len(os.Args) > 0 {
		o.Name = os.Args[0]
	}
	if o.InboxBytes <= 0 {
		o.InboxBytes = 64 << 20
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 2 * time.Second
	}
	c := &Client{
		opts: o, path: path, inboxBytes: o.InboxBytes,
		wwake: make(chan struct{}, 1), pending: map[uint64]chan error{}, opened: map[uint64]chan *Mailbox{},
		lists: map[uint64]chan listAnswer{}, watchers: map[uint64]*Watcher{},
		mailboxes: map[uint64]*Mailbox{}, stop: make(chan struct{}), done: make(chan struct{}),
		batchAt: -1, confirmDelay: defaultConfirmDelay,
	}
	conn, r, sh, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.cluster, c.node = sh.Cluster, sh.Node
	c.maxMsg.Store(int64(sh.MaxMessage))
	c.conn, c.raw, c.up = conn, sockio.Raw(conn), true
	c.wg.Go(c.writer)
	c.wg.Go(func() { c.run(r) })
	return c, nil
}

// dial connects and runs the hello exchange, in the local protocol's
// version 3; a daemon that speaks only version 2 (no message headers) is
// dialled again in version 2, and sends with headers then fail.
func (c *Client) dial(ctx context.Context) (net.Conn, *wire.Reader, *wire.ServerHello, error) {
	conn, r, sh, err := c.dialVersion(ctx, wire.LocalVersion)
	if err == nil || sh == nil || sh.Version != wire.LocalVersion2 || sh.Status != wire.StatusBadRequest {
		if err == nil {
			c.noHeaders.Store(false)
		}
		return conn, r, sh, err
	}
	conn, r, sh, err = c.dialVersion(ctx, wire.LocalVersion2)
	if err == nil {
		c.noHeaders.Store(true)
	}
	return conn, r, sh, err
}

// dialVersion connects and runs the hello exchange in the given version of
// the local protocol. A refusal returns the daemon's ServerHello with the
// error.
func (c *Client) dialVersion(ctx context.Context, version uint64) (net.Conn, *wire.Reader, *wire.ServerHello, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := c.checkPeer(conn, c.path); err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	if _, err := conn.Write(wire.AppendFrame(nil, &wire.ClientHello{Version: version, Name: c.opts.Name, Token: c.opts.Token})); err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("%w: hello: %v", ErrUnavailable, err)
	}
	r := wire.NewReader(conn, 64<<20)
	t, body, err := r.ReadFrame()
	if err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("%w: hello: %v", ErrUnavailable, err)
	}
	var sh wire.ServerHello
	if t != wire.TypeServerHello || sh.DecodeBody(body) != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("%w: daemon answered %v instead of ServerHello", ErrUnavailable, t)
	}
	if sh.Status != wire.StatusOK {
		conn.Close()
		return nil, nil, &sh, statusError(sh.Status, sh.Message)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, r, &sh, nil
}

// run reads from the connection; when it breaks, run reconnects (unless
// NoReconnect) and reads again, until Close.
func (c *Client) run(r *wire.Reader) {
	for {
		err := c.reader(r)
		c.wmu.Lock()
		c.up = false
		c.wbuf, c.batchAt, c.woken = c.wbuf[:0], -1, false // their requests fail below
		conn := c.conn
		closed := c.closed
		c.wmu.Unlock()
		conn.Close()
		if closed {
			c.finish(ErrClosed)
			return
		}
		lost := fmt.Errorf("%w: connection lost: %v", ErrUnavailable, err)
		c.failQuiet(lost)
		c.failPending(lost)
		if c.opts.NoReconnect {
			c.finish(lost)
			return
		}
		if r = c.reconnect(); r == nil {
			c.finish(ErrClosed)
			return
		}
	}
}

// reconnect redials with jittered backoff, then opens the mailboxes again and
// re-joins their groups before requests flow. nil means Close was called.
func (c *Client) reconnect() *wire.Reader {
	wait := 20 * time.Millisecond
	for {
		t := time.NewTimer(time.Duration(rand.Int64N(int64(wait))) + time.Millisecond)
		select {
		case <-c.stop:
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, c.opts.ReconnectMax)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, r, sh, err := c.dial(ctx)
		cancel()
		if err != nil {
			continue
		}
		if sh.Cluster != c.cluster || sh.Node != c.node {
			conn.Close() // another node took the socket: keep trying for ours
			continue
		}
		c.maxMsg.Store(int64(sh.MaxMessage))
		if err := c.restore(conn, r); err != nil {
			conn.Close()
			continue
		}
		c.wmu.Lock()
		if c.closed {
			c.wmu.Unlock()
			conn.Close()
			return nil
		}
		c.conn, c.raw, c.up = conn, sockio.Raw(conn), true
		c.wmu.Unlock()
		c.reconnects.Add(1)
		return r
	}
}

// restore opens every mailbox again on a new connection and re-joins its
// groups, synchronously, before the reader starts.
func (c *Client) restore(conn net.Conn, r *wire.Reader) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	c.mmu.Lock()
	boxes := make([]*Mailbox, 0, len(c.mailboxes))
	for _, mb := range c.mailboxes {
		boxes = append(boxes, mb)
	}
	c.mmu.Unlock()
	fresh := make(map[uint64]*Mailbox, len(boxes))
	var held []*wire.Deliver
	var req uint64
	for _, mb := range boxes {
		req++
		if _, err := conn.Write(wire.AppendFrame(nil, &wire.Open{Req: req})); err != nil {
			return err
		}
		var o wire.Opened
		if err := readAnswer(r, wire.TypeOpened, &o, &held); err != nil {
			return err
		}
		for g, n := range mb.joined() {
			for range n {
				req++
				cl := mb.claimOf(g)
				if _, err := conn.Write(wire.AppendFrame(nil, &wire.Join{Req: req, Mailbox: o.Mailbox, Group: g, PartitionCount: cl.n, Partitions: cl.parts})); err != nil {
					return err
				}
				var res wire.Result
				if err := readAnswer(r, wire.TypeResult, &res, &held); err != nil {
					return err
				}
			}
		}
		mb.setID(o.Mailbox)
		fresh[o.Mailbox] = mb
	}
	c.mmu.Lock()
	c.mailboxes = fresh
	c.mmu.Unlock()
	c.wmu.Lock()
	c.acked, c.unconfirmedBytes = 0, 0 // a new connection counts from 0
	c.wmu.Unlock()
	for _, d := range held {
		c.dispatch(d)
	}
	c.taken.Store(uint64(len(held)))
	// Watches start again: a Reset, then the current members as Joined.
	c.pmu.Lock()
	ws := make([]*Watcher, 0, len(c.watchers))
	for _, w := range c.watchers {
		ws = append(ws, w)
	}
	c.watchers = map[uint64]*Watcher{}
	for _, w := range ws {
		req++
		w.req = req + 1<<62 // distinct from the client's own request ids
		c.watchers[w.req] = w
		w.push(Event{Op: Reset})
	}
	c.pmu.Unlock()
	for _, w := range ws {
		if _, err := conn.Write(wire.AppendFrame(nil, &wire.Watch{Req: w.req, Group: w.group})); err != nil {
			return err
		}
	}
	return nil
}

// readAnswer reads frames until one of type t, decoding it into m. A
// Deliver (or DeliverBatch) that arrives meanwhile (a mailbox already
// re-joined a group) is kept in held, to be dispatched once the mailboxes
// are in place.
func readAnswer(r *wire.Reader, t wire.Type, m wire.Message, held *[]*wire.Deliver) error {
	for {
		got, body, err := r.ReadFrame()
		if err != nil {
			return err
		}
		switch got {
		case wire.TypeDeliver:
			d := new(wire.Deliver)
			if d.DecodeBody(body) == nil {
				d.Payload = append([]byte(nil), d.Payload...)
				d.Headers = append([]byte(nil), d.Headers...)
				*held = append(*held, d)
			}
			continue
		case wire.TypeDeliverBatch:
			var b wire.DeliverBatch
			if b.DecodeBody(body) == nil {
				i := 0
				for p := range b.Payloads.All() {
					d := b.Deliver(i, append([]byte(nil), p...))
					*held = append(*held, &d)
					i++
				}
			}
			continue
		}
		if got != t {
			return fmt.Errorf("expected %v, got %v", t, got)
		}
		return m.DecodeBody(body)
	}
}

// failQuiet reports err for Flush if quiet sends were made since the last
// Sync: the daemon may or may not have accepted them.
func (c *Client) failQuiet(err error) {
	sent := c.quietSent.Load()
	if c.quietSynced.Swap(sent) >= sent {
		return
	}
	c.pmu.Lock()
	if c.asyncErr == nil {
		c.asyncErr = err
	}
	c.pmu.Unlock()
}

// failPending fails every request waiting for an answer.
func (c *Client) failPending(err error) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	for req, ch := range c.pending {
		if ch != nil {
			ch <- err
		} else {
			if c.asyncErr == nil {
				c.asyncErr = err
			}
			c.asyncN--
		}
		delete(c.pending, req)
	}
	for req, ch := range c.opened {
		close(ch)
		delete(c.opened, req)
	}
	for req, ch := range c.lists {
		close(ch)
		delete(c.lists, req)
	}
	if c.asyncN <= 0 {
		c.asyncN = 0
		if c.asyncCh != nil {
			close(c.asyncCh)
			c.asyncCh = nil
		}
	}
}

// Reconnects returns how many times the client reconnected to the daemon.
func (c *Client) Reconnects() uint64 { return c.reconnects.Load() }

// Cluster returns the local daemon's cluster.
func (c *Client) Cluster() string { return c.cluster }

// Node returns the local daemon's node name.
func (c *Client) Node() string { return c.node }

// MaxMessage is the largest payload the daemon accepts.
func (c *Client) MaxMessage() int { return int(c.maxMsg.Load()) }

// Close disconnects; the daemon removes this client's mailboxes from their
// groups. Pending calls fail with ErrClosed. Idempotent.
//
// It first confirms the deliveries the client took (as the confirmation
// timer would a moment later), waiting at most closeConfirmWait for the
// write: so a message the application received is not given again to
// the group's next member. What the client had not taken goes back to
// the group.
func (c *Client) Close() error {
	c.wmu.Lock()
	already := c.closed
	var flushed chan struct{}
	if !already && c.appendConfirmLocked(c.taken.Load()) {
		c.batchAt = -1
		flushed = make(chan struct{})
		c.closeFlushed, c.closeFlushAt = flushed, c.takes+1
	}
	c.closed = true
	conn := c.conn
	c.wmu.Unlock()
	if !already {
		if flushed != nil {
			c.wakeWriter()
			t := time.NewTimer(closeConfirmWait)
			select {
			case <-flushed:
			case <-c.done:
			case <-t.C:
			}
			t.Stop()
		}
		close(c.stop)
		conn.Close()
	}
	c.wg.Wait()
	return nil
}

// closeConfirmWait bounds how long Close waits to write its confirmation
// (a daemon that does not read).
const closeConfirmWait = time.Second

// wroteLocked ends the writer's take number take of wbuf (written, or
// failed): Close's wait for its confirmation ends with it. Called under
// wmu.
func (c *Client) wroteLocked(take uint64) {
	c.writing = false
	if c.closeFlushed != nil && take >= c.closeFlushAt {
		close(c.closeFlushed)
		c.closeFlushed = nil
	}
}

// finish ends the client for good.
func (c *Client) finish(err error) {
	c.once.Do(func() {
		c.wmu.Lock()
		c.closed = true
		if c.confirmTimer != nil {
			c.confirmTimer.Stop() // a run already started finds closed set
		}
		c.wmu.Unlock()
		c.doneErr = err
		close(c.done)
		c.failPending(err)
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

// maxWriteBuffer bounds the frames waiting for the writer: past it a send
// fails at once with ErrBusy instead of growing the SDK's memory.
const maxWriteBuffer = 32 << 20

// enqueue hands a frame to the writer; it never blocks. While the client is
// reconnecting it fails at once with ErrUnavailable; when the daemon does
// not keep up and maxWriteBuffer bytes wait, with ErrBusy.
func (c *Client) enqueue(m wire.Message) error {
	return c.enqueueFrame(func(b []byte) []byte { return wire.AppendFrame(b, m) }, false)
}

// enqueueSend is enqueue for the hot path: s does not escape to the heap.
func (c *Client) enqueueSend(s *wire.Send) error { return c.enqueueFrame(s.AppendFrame, false) }

// enqueueNow is enqueue for a request someone waits for (a Call's, a
// Reply): if the writer is idle, the frame is written at once, as far as
// the socket takes it without blocking, instead of waking the writer: a
// wake-up less on the path of every round trip. Sends in bulk keep the
// writer's batching (enqueue).
func (c *Client) enqueueNow(appendFrame func([]byte) []byte) error {
	return c.enqueueFrame(appendFrame, true)
}

func (c *Client) enqueueFrame(appendFrame func([]byte) []byte, now bool) error {
	return c.enqueueFrameBound(appendFrame, now, true)
}

// enqueueFrameBound is enqueueFrame; without bound, the frame is queued even
// past maxWriteBuffer (a Sync: Flush is what a caller does after ErrBusy).
func (c *Client) enqueueFrameBound(appendFrame func([]byte) []byte, now, bound bool) error {
	c.wmu.Lock()
	if err := c.writableLocked(bound); err != nil {
		c.wmu.Unlock()
		return err
	}
	c.wbuf = appendFrame(c.wbuf)
	if now {
		c.confirmAlongLocked()
	}
	c.batchAt = -1
	if now && !c.writing && c.raw != nil {
		n := sockio.TryWrite(c.raw, c.wbuf)
		c.wbuf = c.wbuf[:copy(c.wbuf, c.wbuf[n:])]
	}
	empty := len(c.wbuf) == 0
	c.wmu.Unlock()
	if !empty {
		c.wakeWriter()
	}
	return nil
}

// enqueueQuiet queues a quiet one-way send (no Corr, not durable): it
// extends the SendBatch frame that ends the write buffer when s has the
// same header and the frame has room, else starts one. The daemon handles
// a batch as that many Sends; a stream of sends to one target costs it one
// header to decode and one route per frame.
func (c *Client) enqueueQuiet(s *wire.Send) error {
	c.wmu.Lock()
	if err := c.writableLocked(true); err != nil {
		c.wmu.Unlock()
		return err
	}
	if c.batchAt < 0 || len(c.wbuf)-c.batchAt >= wire.MaxBatchBody || !c.batch.SameHeader(s) {
		c.batch = wire.SendBatchOf(s)
		c.batchAt = len(c.wbuf)
		c.wbuf = c.batch.AppendFrame(c.wbuf) // no payload yet
	}
	c.wbuf = wire.AppendBatchPayload(c.wbuf, c.batchAt, s.Payload)
	wake := !c.woken // one wake-up per take of wbuf, not one per send
	c.woken = true
	c.wmu.Unlock()
	if wake {
		c.wakeWriter()
	}
	return nil
}

// writableLocked answers whether a frame may be queued now.
func (c *Client) writableLocked(bound bool) error {
	switch {
	case c.closed:
		return ErrClosed
	case !c.up:
		return fmt.Errorf("%w: reconnecting to the daemon", ErrUnavailable)
	case bound && len(c.wbuf) > maxWriteBuffer:
		return &Error{Kind: ErrBusy, Message: fmt.Sprintf("the client's write buffer holds %d bytes the daemon has not read yet", maxWriteBuffer)}
	}
	return nil
}

func (c *Client) wakeWriter() {
	select {
	case c.wwake <- struct{}{}:
	default:
	}
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
		out, c.wbuf, c.batchAt, c.woken = c.wbuf, out[:0], -1, false
		c.takes++
		take := c.takes
		conn := c.conn
		c.writing = len(out) > 0
		if len(out) == 0 { // what Close confirmed, if anything, was written directly
			c.wroteLocked(take)
		}
		c.wmu.Unlock()
		if len(out) == 0 {
			continue
		}
		_, err := conn.Write(out)
		c.wmu.Lock()
		c.wroteLocked(take)
		c.wmu.Unlock()
		if err != nil {
			conn.Close() // the reader sees it and reconnects
			continue
		}
		if cap(out) > maxKeptWriteBuffer {
			out = nil
		}
	}
}

// reader reads one connection until it fails, and returns why.
func (c *Client) reader(r *wire.Reader) error {
	var d wire.Deliver
	var db wire.DeliverBatch
	c.confirm(nil, 0) // deliveries that came during restore
	for {
		t, body, err := r.ReadFrame()
		if err != nil {
			return err
		}
		switch t {
		case wire.TypeDeliver:
			if d.DecodeBody(body) != nil {
				continue
			}
			// Counted before the dispatch wakes a receiver: a Reply made
			// at once takes the confirmation along (confirmAlongLocked),
			// and Close confirms it.
			c.taken.Add(1)
			c.dispatch(&d)
			c.confirm(r, len(body))
		case wire.TypeDeliverBatch:
			if db.DecodeBody(body) != nil {
				continue
			}
			c.taken.Add(uint64(db.Payloads.Count()))
			c.dispatchBatch(&db)
			c.confirm(r, len(body))
		case wire.TypeResult:
			var res wire.Result
			if res.DecodeBody(body) != nil {
				continue
			}
			c.answer(res.Req, statusError(res.Status, res.Message))
		case wire.TypeMembersList:
			l := new(wire.MembersList)
			if l.DecodeBody(body) != nil {
				continue
			}
			c.pmu.Lock()
			ch := c.lists[l.Req]
			delete(c.lists, l.Req)
			c.pmu.Unlock()
			if ch != nil {
				ch <- listAnswer{l: l}
			}
		case wire.TypeWatchEvent:
			var ev wire.WatchEvent
			if ev.DecodeBody(body) != nil {
				continue
			}
			c.pmu.Lock()
			w := c.watchers[ev.Watch]
			c.pmu.Unlock()
			if w != nil {
				w.push(Event{Op: EventOp(ev.Op), Member: Addr{Cluster: ev.Cluster, Node: ev.Node, Mailbox: ev.Mailbox}})
			}
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
	if req&quietReq != 0 { // a quiet send: only failures are answered
		if req&callReq != 0 { // a Call's request: its failure is the Call's
			if ch, ok := c.pending[req]; ok {
				delete(c.pending, req)
				ch <- err
			}
			return
		}
		if err != nil && c.asyncErr == nil {
			c.asyncErr = err
		}
		return
	}
	if ch, ok := c.lists[req]; ok { // a Members request the daemon refused
		delete(c.lists, req)
		if err == nil {
			err = fmt.Errorf("%w: the daemon answered a member list request without the list", ErrUnavailable)
		}
		ch <- listAnswer{err: err}
		return
	}
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
	return c.callWith(ctx, req, m, false)
}

// callWith is call; now writes the request at once when it can (enqueueNow).
func (c *Client) callWith(ctx context.Context, req uint64, m wire.Message, now bool) error {
	return c.callBound(ctx, req, m, now, true)
}

// callBound is callWith; without bound the request is queued even past
// the write buffer's bound (see enqueueFrameBound).
func (c *Client) callBound(ctx context.Context, req uint64, m wire.Message, now, bound bool) error {
	ch := make(chan error, 1)
	c.pmu.Lock()
	c.pending[req] = ch
	c.pmu.Unlock()
	if err := c.enqueueFrameBound(func(b []byte) []byte { return wire.AppendFrame(b, m) }, now, bound); err != nil {
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
	mb := &Mailbox{c: c, addr: Addr{Cluster: c.cluster, Node: c.node, Mailbox: id}, wake: make(chan struct{}, 1), room: make(chan struct{}, 1),
		max: c.inboxBytes, hold: c.opts.HoldWhenFull, groups: map[string]int{}, claims: map[string]claim{}}
	c.mmu.Lock()
	c.mailboxes[id] = mb
	c.mmu.Unlock()
	return mb
}

// Duplicates returns how many redelivered reliable and durable messages
// this client dropped.
func (c *Client) Duplicates() uint64 { return c.duplicates.Load() }

var errNoTarget = errors.New("client: send needs a target address or group")

// maxKeptWriteBuffer bounds the write buffer the writer keeps between
// writes: as much as a batch can hold (maxWriteBuffer and one message), so
// that a sender that keeps the buffer full does not grow a new one from
// nothing after every write (that was a third of the CPU with 4 KiB
// messages). A client that never queued much holds little.
const maxKeptWriteBuffer = maxWriteBuffer + 2<<20
