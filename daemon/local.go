package daemon

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// local.client_buffer bounds the bytes waiting to be written to one local
// client. Past it, deliveries to that client's mailboxes are dropped and
// counted (reason "inbox_full"), or, for messages from other nodes under
// local.inbox_full: hold, wait for room. Answers to requests are never
// dropped: the daemon stops reading the client's requests until there is
// room for them (clientwrite.go).

// localClient is one connection on the socket. Its reader runs in the
// connection's goroutine; one writer goroutine owns the writes.
type localClient struct {
	d    *Daemon
	conn net.Conn
	name string
	// noHeaders: the client speaks wire.LocalVersion2, which has no
	// message headers; its deliveries go without them. Set by hello,
	// before the client's goroutines read it.
	noHeaders bool

	srv       *localServer
	evicted   bool                // guarded by srv.mu: closed before its hello, for a newer connection (addPending)
	admitted  bool                // guarded by srv.mu: past its hello, holding a slot of local.max_clients
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

	omu      sync.Mutex // guards out, writing, closed, appended, written, waiters, room, and the confirmations below
	out      outBuf
	writing  bool // the writer goroutine is writing chunks it took from out
	closed   bool
	appended uint64        // bytes ever appended to out
	written  uint64        // bytes ever written to the connection
	waiters  []waiter      // run once written reaches their offset, in order
	room     chan struct{} // closed by the writer after a write; nil until someone waits for room
	owake    chan struct{} // capacity 1
	done     chan struct{} // closed when the client ends
	wdone    chan struct{} // closed when the writer goroutine ends

	// Confirmations (confirm.go), guarded by omu.
	delivs      uint64           // deliveries queued on the connection
	confirms    []pendingConfirm // reliable deliveries not yet confirmed, in order, from confirmHead
	confirmHead int
	confirmedAt uint64           // byte offset up to which nothing waits for confirmation
	done1       []pendingConfirm // the reader's scratch for onDeliverAck
}

func (c *localClient) serve() {
	d := c.d
	defer c.conn.Close()
	r := wire.NewReader(c.conn, d.cfg.Link.MaxFrameSize)
	if !c.hello(r) {
		return
	}
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
		c.loseConfirms()
	}()
	for frames := 0; ; frames++ {
		waited := r.Buffered() == 0
		t, body, err := r.ReadFrame()
		if err != nil {
			var fe *wire.FrameError
			if errors.As(err, &fe) {
				c.srv.reject("bad_frame", "local client sent a bad frame", "client", c.name, "err", err)
			}
			return
		}
		// The clock is read once per read from the socket (and every 256
		// frames of one): frames that came in one read share it (see the
		// optimisation log in bench/README.md).
		if waited || frames&255 == 0 {
			c.now = d.now()
		}
		if err := c.handle(t, body); err != nil {
			c.srv.reject("bad_frame", "local client protocol error", "client", c.name, "err", err)
			return
		}
	}
}

// hello runs the hello exchange, within local.hello_timeout, and reports
// whether the client is in: its hello good, and a slot of
// local.max_clients its own. A refusal is answered (when the client said
// something) and counted.
func (c *localClient) hello(r *wire.Reader) bool {
	d := c.d
	_ = c.conn.SetDeadline(time.Now().Add(d.cfg.Local.HelloTimeout))
	t, body, err := r.ReadFrame()
	if err != nil {
		reason := "no_hello" // closed, or silent past local.hello_timeout
		if fe := (*wire.FrameError)(nil); errors.As(err, &fe) {
			reason = "bad_hello" // not our protocol
		}
		if !c.srv.wasEvicted(c) { // else counted as hello_evicted
			c.srv.reject(reason, "local connection closed before its hello", "err", err)
		}
		return false
	}
	answer := func(status uint8, msg string) {
		sh := &wire.ServerHello{Version: wire.LocalVersion, Cluster: d.cfg.Cluster, Node: d.cfg.Node, Incarnation: d.incarnation,
			MaxMessage: uint64(d.maxMessage()), Status: status, Message: msg}
		_, _ = c.conn.Write(wire.AppendFrame(nil, sh))
	}
	var h wire.ClientHello
	switch {
	case t != wire.TypeClientHello || h.DecodeBody(body) != nil:
		c.srv.reject("bad_hello", "local client refused: bad hello", "type", t.String())
		answer(wire.StatusBadRequest, fmt.Sprintf("expected ClientHello, got %v", t))
	case h.Version != wire.LocalVersion && h.Version != wire.LocalVersion2:
		c.srv.reject("bad_version", "local client refused: unsupported version", "client", h.Name, "version", h.Version)
		answer(wire.StatusBadRequest, fmt.Sprintf("local protocol version %d not supported (this daemon speaks %d and %d)",
			h.Version, wire.LocalVersion2, wire.LocalVersion))
	case d.cfg.Local.Token != "" && subtle.ConstantTimeCompare([]byte(d.cfg.Local.Token), []byte(h.Token)) != 1:
		c.srv.reject("bad_token", "local client rejected: bad token", "client", h.Name)
		answer(wire.StatusUnauthorized, "bad or missing token")
	case !c.srv.admit(c):
		c.srv.reject("too_many", "local client refused: too many clients", "client", h.Name, "max_clients", d.cfg.Local.MaxClients)
		answer(wire.StatusBusy, fmt.Sprintf("too many clients (local.max_clients = %d)", d.cfg.Local.MaxClients))
	default:
		c.name, c.noHeaders = h.Name, h.Version == wire.LocalVersion2
		answer(wire.StatusOK, "")
		_ = c.conn.SetDeadline(time.Time{})
		return true
	}
	return false
}

// maxWatches bounds the watches of one client.
const maxWatches = 1024

func (c *localClient) handle(t wire.Type, body []byte) error {
	if t == wire.TypeSend { // the hot path: decoded into the client's own Send
		if err := c.send.DecodeBody(body); err != nil {
			return err
		}
		c.handleSend(&c.send)
		return nil
	}
	if t == wire.TypeDeliverAck {
		var a wire.DeliverAck
		if err := a.DecodeBody(body); err != nil {
			return err
		}
		return c.onDeliverAck(a.Count)
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
		c.open(m)
	case *wire.CloseMailbox:
		c.answer(m.Req, c.closeMailbox(m))
	case *wire.Join:
		c.answer(m.Req, c.join(m))
	case *wire.Leave:
		c.answer(m.Req, c.leave(m))
	case *wire.Sync:
		c.answer(m.Req, nil)
	case *wire.Watch:
		c.watch(m)
	case *wire.Unwatch:
		c.answer(m.Req, c.unwatch(m))
	case *wire.Members:
		c.members(m)
	default:
		return fmt.Errorf("unexpected %v from a client", t)
	}
	return nil
}

// checkGroupOp refuses a group operation on a mailbox of another client,
// or on a group name that is not valid.
func (c *localClient) checkGroupOp(mb uint64, group string) error {
	if c.mailboxes[mb] == nil {
		return refuse(errNoMailbox, "mailbox %d is not yours", mb)
	}
	if err := validGroup(group); err != nil {
		return refuse(errBadRequest, "%v", err)
	}
	return nil
}

func validGroup(g string) error { return groups.CheckName(g) }
