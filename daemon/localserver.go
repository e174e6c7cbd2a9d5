package daemon

import (
	"net"
	"slices"
	"sync"

	"github.com/wandist/wandist/internal/sockio"
)

// localServer serves services on the Unix socket.
//
// A connection holds a slot of local.max_clients only once its hello is
// accepted. Before that it is pending: it has local.hello_timeout to say
// hello, and at most maxPendingHello connections are pending at once; one
// more closes the oldest pending one (counted as hello_evicted). Silent
// connections so never lock real clients out: a real client says hello
// as soon as it connects.
type localServer struct {
	d  *Daemon
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	clients map[*localClient]struct{} // every connection; guarded by mu
	pending []*localClient            // connections before their hello, oldest first; guarded by mu
	active  int                       // clients past their hello (admitted); guarded by mu
	closed  bool                      // guarded by mu

	logs sync.Map // reason -> *logOnce: refusal warnings, one per reason per interval
}

// maxPendingHello bounds the connections waiting for their hello.
const maxPendingHello = 128

func (s *localServer) acceptLoop() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &localClient{d: s.d, srv: s, conn: conn, mailboxes: map[uint64]*mailbox{}, watches: map[uint64]func(){},
			owake: make(chan struct{}, 1), done: make(chan struct{}), wdone: make(chan struct{})}
		c.raw = sockio.Raw(conn)
		if !s.addPending(c) {
			conn.Close()
			return
		}
		s.wg.Go(func() {
			c.serve()
			s.release(c)
		})
	}
}

// addPending records a new connection, closing the oldest one still
// waiting for its hello if maxPendingHello are. It is false once the
// server is closed.
func (s *localServer) addPending(c *localClient) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if len(s.pending) >= maxPendingHello {
		old := s.pending[0]
		s.pending = slices.Delete(s.pending, 0, 1)
		old.evicted = true
		old.conn.Close()
		s.reject("hello_evicted", "local connections without a hello closed for newer ones", "pending_max", maxPendingHello)
	}
	s.pending = append(s.pending, c)
	s.clients[c] = struct{}{}
	return true
}

// admit takes c, which said a good hello, off the pending list, and gives
// it a slot of local.max_clients if one is free.
func (s *localServer) admit(c *localClient) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unpendLocked(c)
	if s.active >= s.d.cfg.Local.MaxClients {
		return false
	}
	s.active++
	c.admitted = true
	s.d.metrics.localClients.Inc()
	return true
}

// wasEvicted reports whether addPending closed c for a newer connection.
func (s *localServer) wasEvicted(c *localClient) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.evicted
}

// release forgets c once its connection ended, freeing its slot.
func (s *localServer) release(c *localClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unpendLocked(c)
	delete(s.clients, c)
	if c.admitted {
		s.active--
		s.d.metrics.localClients.Dec()
	}
}

func (s *localServer) unpendLocked(c *localClient) {
	if i := slices.Index(s.pending, c); i >= 0 {
		s.pending = slices.Delete(s.pending, i, i+1)
	}
}

// reject counts a refusal (or disconnection) of a local client by reason,
// and logs it at most once per reason per interval.
func (s *localServer) reject(reason, msg string, args ...any) {
	s.d.metrics.localRejects.WithLabelValues(reason).Inc()
	v, _ := s.logs.LoadOrStore(reason, new(logOnce))
	v.(*logOnce).Do(func() {
		s.d.log.Warn(msg, append(args, "reason", reason,
			"note", "repeats within 10s are counted in wandist_local_rejections_total, not logged")...)
	})
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
