package daemon

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/sockio"
	"github.com/wandist/wandist/wire"
)

// local.client_buffer bounds the deliveries waiting to be written to one
// local client. Past it, deliveries to that client's mailboxes are dropped
// and counted (reason "inbox_full"), or, for messages from other nodes under
// local.inbox_full: hold, wait for room. Results of requests are never
// dropped: they are bounded by the requests read.

// maxGroupName bounds a group name.
const maxGroupName = 255

// localServer serves services on the Unix socket.
type localServer struct {
	d  *Daemon
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	clients map[*localClient]struct{} // guarded by mu
	closed  bool                      // guarded by mu
}

// mailbox is a local address that messages are delivered to.
type mailbox struct {
	id        uint64
	c         *localClient
	delivered atomic.Uint64
	dropped   atomic.Uint64
	removed   atomic.Bool // set before it leaves d.mailboxes (a mailboxCache may hold it)
}

// mailboxCache is one goroutine's memory of the last mailbox it looked up:
// a link's data reader, whose stream mostly goes to one mailbox, looks it
// up in d.mailboxes once instead of once or twice per message. The zero
// value is empty.
type mailboxCache struct {
	id uint64
	mb *mailbox // nil: empty
}

// localClient is one connection on the socket. Its reader runs in the
// connection's goroutine; one writer goroutine owns the writes.
type localClient struct {
	d    *Daemon
	conn net.Conn
	name string

	tooMany   bool                // set at accept: over local.max_clients, refused after the hello
	mailboxes map[uint64]*mailbox // owned by the reader goroutine
	send      wire.Send           // owned by the reader goroutine: the Send being handled
	batch     wire.SendBatch      // owned by the reader goroutine: the SendBatch being handled
	now       time.Time           // owned by the reader goroutine: when the frame being handled was read
	watches   map[uint64]func()   // owned by the reader goroutine: cancel per watch Req
	route     routeCache          // owned by the reader goroutine: its sends' last route

	// Writes: the writer goroutine owns the connection's blocking writes.
	// A link's stream reader that delivers the last frame it had buffered
	// while the writer is idle first tries to write what is queued at once,
	// without blocking (writeNowLocked, under omu): at low rates this
	// spares a wake-up of the writer per frame, on the path of every
	// request and reply, and a burst still goes out in the writer's large
	// writes. Whatever the socket does not take at once is left to the
	// writer.
	raw syscall.RawConn // the connection's, for writes that must not block; nil if it has none

	omu      sync.Mutex // guards out, writing, closed, appended, written, waiters, room
	out      outBuf
	writing  bool // the writer goroutine is writing chunks it took from out
	closed   bool
	appended uint64        // bytes ever appended to out
	written  uint64        // bytes ever written to the connection
	waiters  []waiter      // run once written reaches their offset, in order
	room     chan struct{} // closed by the writer after a write; nil until someone waits for room
	owake    chan struct{} // capacity 1
	done     chan struct{} // closed when the client ends
}

func startLocal(d *Daemon, path string) (*localServer, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("local socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("local socket %s: another daemon is listening on it", path)
		}
		_ = os.Remove(path) // stale socket of a daemon that died
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("local socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local socket %s: chmod: %w", path, err)
	}
	s := &localServer{d: d, ln: ln, clients: map[*localClient]struct{}{}}
	s.wg.Go(s.acceptLoop)
	return s, nil
}

func (s *localServer) acceptLoop() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &localClient{d: s.d, conn: conn, mailboxes: map[uint64]*mailbox{}, watches: map[uint64]func(){}, owake: make(chan struct{}, 1), done: make(chan struct{})}
		c.raw = sockio.Raw(conn)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		c.tooMany = len(s.clients) >= s.d.cfg.Local.MaxClients
		s.clients[c] = struct{}{}
		s.mu.Unlock()
		s.d.metrics.localClients.Inc()
		s.wg.Go(func() {
			c.serve()
			s.mu.Lock()
			delete(s.clients, c)
			s.mu.Unlock()
			s.d.metrics.localClients.Dec()
		})
	}
}

// close stops accepting, disconnects every client and waits.
func (s *localServer) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.clients {
		c.conn.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (c *localClient) serve() {
	d := c.d
	defer c.conn.Close()
	_ = c.conn.SetDeadline(time.Now().Add(d.cfg.Link.HandshakeTimeout))
	r := wire.NewReader(c.conn, d.cfg.Link.MaxFrameSize)
	t, body, err := r.ReadFrame()
	if err != nil {
		d.log.Debug("local client: no hello", "err", err)
		return
	}
	hello := func(status uint8, msg string) {
		sh := &wire.ServerHello{Version: wire.LocalVersion, Cluster: d.cfg.Cluster, Node: d.cfg.Node, Incarnation: d.incarnation,
			MaxMessage: uint64(d.maxMessage()), Status: status, Message: msg}
		_, _ = c.conn.Write(wire.AppendFrame(nil, sh))
	}
	var h wire.ClientHello
	if t != wire.TypeClientHello || h.DecodeBody(body) != nil {
		hello(wire.StatusBadRequest, fmt.Sprintf("expected ClientHello, got %v", t))
		return
	}
	if h.Version != wire.LocalVersion {
		hello(wire.StatusBadRequest, fmt.Sprintf("local protocol version %d not supported (this daemon speaks %d)", h.Version, wire.LocalVersion))
		return
	}
	if c.tooMany {
		d.metrics.localRejects.Inc()
		d.log.Warn("local client refused: too many clients", "client", h.Name, "max_clients", d.cfg.Local.MaxClients)
		hello(wire.StatusBusy, fmt.Sprintf("too many clients (local.max_clients = %d)", d.cfg.Local.MaxClients))
		return
	}
	if tok := d.cfg.Local.Token; tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(h.Token)) != 1 {
		d.metrics.localRejects.Inc()
		d.log.Warn("local client rejected: bad token", "client", h.Name)
		hello(wire.StatusUnauthorized, "bad or missing token")
		return
	}
	c.name = h.Name
	hello(wire.StatusOK, "")
	_ = c.conn.SetDeadline(time.Time{})

	var wg sync.WaitGroup
	wg.Go(c.writer)
	defer func() {
		c.omu.Lock()
		c.closed = true
		c.omu.Unlock()
		close(c.done)
		c.conn.Close()
		wg.Wait()
		for _, cancel := range c.watches {
			cancel()
		}
		for id := range c.mailboxes {
			c.d.removeMailbox(id)
		}
	}()
	for frames := 0; ; frames++ {
		waited := r.Buffered() == 0
		t, body, err := r.ReadFrame()
		if err != nil {
			var fe *wire.FrameError
			if errors.As(err, &fe) {
				d.log.Warn("local client sent a bad frame", "client", c.name, "err", err)
			}
			return
		}
		// The clock is read once per read from the socket (and every 256
		// frames of one): frames that came in one read share it. One read
		// per message cost 7 % of a busy sender's daemon.
		if waited || frames&255 == 0 {
			c.now = d.now()
		}
		if err := c.handle(t, body); err != nil {
			d.log.Warn("local client protocol error", "client", c.name, "err", err)
			return
		}
	}
}

// waiter is a callback to run once the connection has written the bytes up
// to offset at.
type waiter struct {
	at uint64
	fn func()
}

// appendLocked appends a frame to out and returns the offset of its end.
func (c *localClient) appendLocked(m wire.Message) uint64 {
	b := c.out.tail(512) // control frames: small
	n := len(b)
	b = wire.AppendFrame(b, m)
	c.out.commit(b)
	c.appended += uint64(len(b) - n)
	return c.appended
}

// writer owns the connection's writes: it drains out and writes it at
// once, then runs the waiters whose bytes are now written. Waiters of bytes
// never written (the connection ended) are never run.
func (c *localClient) writer() {
	var chunks [][]byte
	var scratch net.Buffers
	var ready []waiter
	for {
		select {
		case <-c.owake:
		case <-c.done:
			return
		}
		c.omu.Lock()
		var n int
		chunks, n = c.out.take(chunks)
		c.writing = n > 0
		c.omu.Unlock()
		if n > 0 { // else: woken for waiters of bytes written at once
			if err := writeChunks(c.conn, chunks, &scratch); err != nil {
				c.conn.Close()
				return
			}
		}
		c.omu.Lock()
		c.writing = false
		c.written += uint64(n)
		if c.room != nil && n > 0 {
			close(c.room)
			c.room = nil
		}
		i := 0
		for i < len(c.waiters) && c.waiters[i].at <= c.written {
			i++
		}
		ready = append(ready[:0], c.waiters[:i]...)
		c.waiters = c.waiters[i:]
		c.omu.Unlock()
		for _, w := range ready {
			w.fn()
		}
		clear(ready)
	}
}

func (c *localClient) reply(m wire.Message) {
	c.omu.Lock()
	if !c.closed {
		c.appendLocked(m)
	}
	c.omu.Unlock()
	c.wakeWriter()
}

func (c *localClient) wakeWriter() {
	select {
	case c.owake <- struct{}{}:
	default:
	}
}

// writeNowLocked writes what out holds at once, if the writer goroutine is
// idle, as far as the socket takes it without blocking, and reports whether
// out is empty then. Waiters whose bytes went are left for the writer to
// run: a caller with waiters wakes it.
func (c *localClient) writeNowLocked() bool {
	if c.raw == nil || c.writing || c.closed {
		return c.out.n == 0 && len(c.waiters) == 0
	}
	for len(c.out.chunks) > 0 {
		b := c.out.chunks[0]
		if len(b) == 0 {
			c.out.drop(0)
			continue
		}
		n := sockio.TryWrite(c.raw, b)
		if n == 0 {
			return false
		}
		c.out.drop(n)
		c.written += uint64(n)
		if c.room != nil {
			close(c.room)
			c.room = nil
		}
	}
	return len(c.waiters) == 0
}

// maxWatches bounds the watches of one client.
const maxWatches = 1024

// event queues a watch event. Past the client's buffer bound it queues, once,
// an overflow event instead (the client must list the members again); it
// reports false for an event it dropped. Runs under the registry lock.
func (c *localClient) event(ev *wire.WatchEvent, overflowed *bool) bool {
	c.omu.Lock()
	if c.closed {
		c.omu.Unlock()
		return true
	}
	if c.out.n > c.d.cfg.Local.ClientBuffer {
		if !*overflowed {
			*overflowed = true
			c.appendLocked(&wire.WatchEvent{Watch: ev.Watch, Op: wire.OpOverflow})
		}
		c.omu.Unlock()
		return false
	}
	*overflowed = false
	c.appendLocked(ev)
	c.omu.Unlock()
	select {
	case c.owake <- struct{}{}:
	default:
	}
	return true
}

func (c *localClient) result(req uint64, status uint8, msg string) {
	c.reply(&wire.Result{Req: req, Status: status, Message: msg})
}

// deliver queues a Deliver for the client; false if its buffer is full.
// written, if not nil, runs once the frame is written to the connection.
// deliver queues m for the client; it is false if the client is gone, or if
// its buffer is over local.client_buffer and force is not set. force is for
// a caller that waited for room first (waitRoom): the buffer may then pass
// its bound by a message per waiting link lane, and never by more than the
// bound again (past that, even a forced delivery is dropped and counted).
//
// now says the caller has nothing more to deliver for the moment (the end
// of what its link stream had buffered): the frame, and whatever is queued
// with it, is then written at once if the socket takes it without
// blocking and the writer is idle. Otherwise the writer is woken, and
// takes the frames of a burst together.
func (c *localClient) deliver(m *wire.Deliver, written func(), force, now bool) bool {
	limit := c.d.cfg.Local.ClientBuffer
	if force {
		limit *= 2
	}
	c.omu.Lock()
	if c.closed || c.out.n > limit {
		c.omu.Unlock()
		return false
	}
	c.appended += uint64(c.out.appendDeliver(m)) // not appendLocked: m stays off the heap
	if written != nil {
		c.waiters = append(c.waiters, waiter{at: c.appended, fn: written})
	}
	done := now && c.writeNowLocked()
	c.omu.Unlock()
	if !done {
		c.wakeWriter()
	}
	return true
}

// waitRoom waits until the client's buffer is within local.client_buffer,
// or the client is gone. It is false if ctx ended first.
func (c *localClient) waitRoom(ctx context.Context) bool {
	c.omu.Lock()
	for !c.closed && c.out.n > c.d.cfg.Local.ClientBuffer {
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.omu.Unlock()
		select {
		case <-room:
		case <-c.done:
		case <-ctx.Done():
			return false
		}
		c.omu.Lock()
	}
	c.omu.Unlock()
	return true
}

func (c *localClient) handle(t wire.Type, body []byte) error {
	d := c.d
	if t == wire.TypeSend { // the hot path: decoded into the client's own Send
		if err := c.send.DecodeBody(body); err != nil {
			return err
		}
		c.handleSend(&c.send)
		return nil
	}
	if t == wire.TypeSendBatch { // the hot path of a stream of quiet sends
		if err := c.batch.DecodeBody(body); err != nil {
			return err
		}
		c.handleSendBatch(&c.batch)
		return nil
	}
	m, err := wire.Decode(t, body)
	if err != nil {
		return err
	}
	switch m := m.(type) {
	case *wire.Open:
		id := d.mailboxSeq.Add(1)
		mb := &mailbox{id: id, c: c}
		c.mailboxes[id] = mb
		d.mailboxes.Store(id, mb)
		c.reply(&wire.Opened{Req: m.Req, Mailbox: id})
	case *wire.CloseMailbox:
		if c.mailboxes[m.Mailbox] == nil {
			c.result(m.Req, wire.StatusNoMailbox, fmt.Sprintf("mailbox %d is not yours", m.Mailbox))
			return nil
		}
		delete(c.mailboxes, m.Mailbox)
		d.removeMailbox(m.Mailbox)
		c.result(m.Req, wire.StatusOK, "")
	case *wire.Join:
		if st, msg := c.checkGroupOp(m.Mailbox, m.Group); st != wire.StatusOK {
			c.result(m.Req, st, msg)
			return nil
		}
		if err := d.groups.JoinClaim(m.Group, m.Mailbox, groups.Claim{N: m.PartitionCount, Partitions: m.Partitions}); err != nil {
			c.result(m.Req, wire.StatusBadRequest, err.Error())
			return nil
		}
		c.result(m.Req, wire.StatusOK, "")
	case *wire.Leave:
		if st, msg := c.checkGroupOp(m.Mailbox, m.Group); st != wire.StatusOK {
			c.result(m.Req, st, msg)
			return nil
		}
		if !d.groups.Leave(m.Group, m.Mailbox) {
			c.result(m.Req, wire.StatusBadRequest, fmt.Sprintf("mailbox %d is not in group %q", m.Mailbox, m.Group))
			return nil
		}
		c.result(m.Req, wire.StatusOK, "")
	case *wire.Sync:
		c.result(m.Req, wire.StatusOK, "")
	case *wire.Watch:
		if err := validGroup(m.Group); err != nil {
			c.result(m.Req, wire.StatusBadRequest, err.Error())
			return nil
		}
		if c.watches[m.Req] != nil {
			c.result(m.Req, wire.StatusBadRequest, fmt.Sprintf("watch %d already exists", m.Req))
			return nil
		}
		if len(c.watches) >= maxWatches {
			c.result(m.Req, wire.StatusBusy, fmt.Sprintf("at most %d watches per client", maxWatches))
			return nil
		}
		c.result(m.Req, wire.StatusOK, "")
		req := m.Req
		overflowed := false
		c.watches[req] = d.groups.Watch(m.Group, func(e groups.Event) {
			ev := &wire.WatchEvent{Watch: req, Op: uint8(e.Op), Cluster: e.Member.Cluster, Node: e.Member.Node, Mailbox: e.Member.Mailbox}
			if !c.event(ev, &overflowed) {
				d.metrics.dropped.WithLabelValues("watch_overflow").Inc()
			}
		})
	case *wire.Unwatch:
		cancel := c.watches[m.Watch]
		if cancel == nil {
			c.result(m.Req, wire.StatusBadRequest, fmt.Sprintf("no watch %d", m.Watch))
			return nil
		}
		cancel()
		delete(c.watches, m.Watch)
		c.result(m.Req, wire.StatusOK, "")
	case *wire.Members:
		ms := d.groups.Members(m.Group)
		if m.Local {
			ms = d.groups.LocalMembers(m.Group)
		}
		claims := d.groups.ClaimsOf(m.Group)
		out := &wire.MembersList{Req: m.Req, Members: make([]wire.MemberInfo, 0, len(ms))}
		for _, x := range ms {
			out.Members = append(out.Members, wire.MemberInfo{Cluster: x.Cluster, Node: x.Node, Mailbox: x.Mailbox,
				Count: uint64(x.Count), Reachable: x.Reachable, Partitions: claims[groups.MemberKey{Cluster: x.Cluster, Node: x.Node, Mailbox: x.Mailbox}].Partitions})
		}
		c.reply(out)
	default:
		return fmt.Errorf("unexpected %v from a client", t)
	}
	return nil
}

func (c *localClient) checkGroupOp(mb uint64, group string) (uint8, string) {
	if c.mailboxes[mb] == nil {
		return wire.StatusNoMailbox, fmt.Sprintf("mailbox %d is not yours", mb)
	}
	if err := validGroup(group); err != nil {
		return wire.StatusBadRequest, err.Error()
	}
	return wire.StatusOK, ""
}

func validGroup(g string) error {
	if g == "" || len(g) > maxGroupName {
		return fmt.Errorf("group name must be 1 to %d bytes, got %d", maxGroupName, len(g))
	}
	for i := 0; i < len(g); i++ {
		if g[i] < 0x20 || g[i] == 0x7f {
			return fmt.Errorf("group name %q has a control character at byte %d", g, i)
		}
	}
	return nil
}

func (d *Daemon) removeMailbox(id uint64) {
	if v, ok := d.mailboxes.Load(id); ok {
		v.(*mailbox).removed.Store(true)
	}
	d.mailboxes.Delete(id)
	d.groups.RemoveMailbox(id)
}

// deliverLocal hands a message to a local mailbox: found is false if there
// is no such mailbox, ok false if its client's buffer is full (counted).
// A message for a mailbox that is gone but sent to a group goes to another
// local member of that group (the mailbox may have died with an earlier run
// of this node, or its client reconnected).
//
// handled, if not nil, runs once the message is dealt with: written to its
// client's connection, or dropped (counted). It is never run for a message
// queued to a client whose connection ends before the write.
//
// force skips the client's buffer bound (see localClient.deliver). mc, if
// not nil, is the caller's mailbox cache.
func (d *Daemon) deliverLocal(m *wire.Deliver, handled func(), force, now bool, mc *mailboxCache) (ok, found bool) {
	mb := d.localMailbox(m.Mailbox, m.Group, mc)
	if mb != nil && mb.id != m.Mailbox {
		m.Mailbox = mb.id
		d.metrics.rerouted.Inc()
	}
	if mb == nil {
		d.metrics.dropped.WithLabelValues("no_mailbox").Inc()
		if handled != nil {
			handled()
		}
		return false, false
	}
	if !mb.c.deliver(m, handled, force, now) {
		mb.dropped.Add(1)
		d.metrics.dropped.WithLabelValues("inbox_full").Inc()
		if handled != nil {
			handled()
		}
		return false, true
	}
	mb.delivered.Add(1)
	d.metrics.delivered.Inc()
	return true, true
}

// deliverRemote hands a message received on a link to its mailbox.
// A message is acknowledged to the sender whatever happens here: a missing
// mailbox or a full inbox is counted, not retried.
//
// Under local.inbox_full: hold the caller has waited for room (holdForRoom),
// so the message is not dropped for a full buffer.
func (d *Daemon) deliverRemote(from auth.PeerID, stream uint64, m *wire.Data, handled func(), now bool, mc *mailboxCache) {
	if m.Group != "" && !d.exported(m.Group, from.Cluster) {
		// This node never published the group to that cluster.
		d.metrics.dropped.WithLabelValues("not_exported").Inc()
		d.log.Warn("message to a group not exported to the sender's cluster dropped", "group", m.Group, "from", from.String())
		if handled != nil {
			handled()
		}
		return
	}
	dm := &wire.Deliver{Mailbox: m.To, FromCluster: from.Cluster, FromNode: from.Node, From: m.From, Group: m.Group, Payload: m.Payload,
		Corr: m.Corr, Flags: m.Flags & wire.FlagReply, TTL: m.TTL}
	if m.Flags&wire.FlagDurable != 0 {
		dm.Stream, dm.Seq = stream, m.Seq
	}
	d.deliverLocal(dm, handled, d.cfg.Local.InboxFull == configs.InboxHold, now, mc)
}

// localMailbox returns the mailbox a message to mailbox id, sent to group,
// goes to on this node: that mailbox, or if it is gone (it died with an
// earlier run of this node, or its client reconnected) a local member of
// the group; nil if neither exists. mc (nil: none) is the caller's cache:
// the mailbox found by id is remembered there.
func (d *Daemon) localMailbox(id uint64, group string, mc *mailboxCache) *mailbox {
	if mc != nil && mc.mb != nil && mc.id == id && !mc.mb.removed.Load() {
		return mc.mb
	}
	v, _ := d.mailboxes.Load(id)
	mb, _ := v.(*mailbox)
	if mb != nil && mc != nil {
		mc.id, mc.mb = id, mb
	}
	if mb == nil && group != "" {
		if mem, ok := d.groups.Closest(group); ok && mem.Cluster == d.cfg.Cluster && mem.Node == d.cfg.Node {
			v, _ = d.mailboxes.Load(mem.Mailbox)
			mb, _ = v.(*mailbox)
		}
	}
	return mb
}

// holdForRoom, under local.inbox_full: hold, waits until the client of the
// message's mailbox has room in its buffer. It is false if ctx (the link)
// ended first: the message was not delivered, and the link's resume will
// bring it again. mc is as for localMailbox.
func (d *Daemon) holdForRoom(ctx context.Context, m *wire.Data, mc *mailboxCache) bool {
	if d.cfg.Local.InboxFull != configs.InboxHold {
		return true
	}
	// A message rerouted to another local member (deliverLocal) waits for
	// that member's client.
	mb := d.localMailbox(m.To, m.Group, mc)
	if mb == nil {
		return true
	}
	return mb.c.waitRoom(ctx)
}
