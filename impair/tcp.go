package impair

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCPRelay forwards each TCP connection accepted on its listen address to
// one target. It delays, rate-caps and corrupts the byte stream per
// direction (Forward is client to target); order is always kept, and Loss,
// Duplicate and Reorder do not apply to a stream. A blackhole holds the
// bytes (nothing is forwarded, no FIN, no RST) until it ends; the kernel
// still acknowledges what fits in its socket buffers.
type TCPRelay struct {
	ln     net.Listener
	target string
	faults pathFaults

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // guarded by mu
	closed bool                  // guarded by mu
	stop   chan struct{}         // closed by Close
	wg     sync.WaitGroup
}

// tcpQueueLimit bounds the bytes one direction of a connection holds for
// later; past it the relay stops reading (back-pressure).
const tcpQueueLimit = 4 << 20

// NewTCPRelay listens on listen (e.g. "127.0.0.1:0") and forwards to target.
func NewTCPRelay(listen, target string) (*TCPRelay, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	r := &TCPRelay{ln: ln, target: target, faults: newPathFaults(), conns: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	r.wg.Go(r.serve)
	return r, nil
}

// Addr is the relay's listen address: dial this instead of the target.
func (r *TCPRelay) Addr() string { return r.ln.Addr().String() }

// SetFaults sets the faults of dir (Forward, Backward or Both).
func (r *TCPRelay) SetFaults(dir Direction, f Faults) error { return r.faults.set(dir, f) }

// Stats returns what dir did so far (Both: the sum). A chunk held by a
// blackhole counts once in Blackholed.
func (r *TCPRelay) Stats(dir Direction) Stats { return r.faults.stats(dir) }

// SetBlackhole holds (true) or releases (false) both directions.
func (r *TCPRelay) SetBlackhole(on bool) { r.faults.update(Both, func(f *Faults) { f.Blackhole = on }) }

// Conns returns the number of relayed connections open now.
func (r *TCPRelay) Conns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns) / 2
}

func (r *TCPRelay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	for _, c := range cs {
		r.conns[c] = struct{}{}
	}
	return true
}

func (r *TCPRelay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	for _, c := range cs {
		delete(r.conns, c)
	}
	r.mu.Unlock()
}

func (r *TCPRelay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.wg.Go(func() { r.handle(c) })
	}
}

func (r *TCPRelay) handle(client net.Conn) {
	d := net.Dialer{Timeout: 5 * time.Second}
	up, err := d.Dial("tcp", r.target)
	if err != nil {
		client.Close()
		return
	}
	if !r.track(client, up) {
		client.Close()
		up.Close()
		return
	}
	var once sync.Once
	kill := func() {
		once.Do(func() {
			client.Close()
			up.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.pump(Forward, client, up, kill) })
	wg.Go(func() { r.pump(Backward, up, client, kill) })
	wg.Wait()
	kill()
	r.untrack(client, up)
}

// pump copies src to dst through dir's faults. At EOF it half-closes dst
// once everything before it was written; on an error it kills both.
func (r *TCPRelay) pump(dir Direction, src, dst net.Conn, kill func()) {
	sh := r.faults.shaper(dir)
	line := newDelayLine(tcpQueueLimit)
	defer line.close()
	var last time.Time // chunks leave in order
	var fail atomic.Bool
	write := func(p []byte) {
		if _, err := dst.Write(p); err != nil {
			fail.Store(true)
			kill()
			return
		}
		sh.c.forwarded.Add(1)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !r.forward(sh, line, &last, buf[:n], write) {
			return
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				kill()
				return
			}
			done := make(chan struct{})
			line.push(last, nil, func([]byte) {
				if tc, ok := dst.(*net.TCPConn); ok && !fail.Load() {
					_ = tc.CloseWrite()
				}
				close(done)
			}, true)
			select {
			case <-done:
			case <-r.stop:
			}
			return
		}
	}
}

// forward queues one chunk; false if the relay is closing.
func (r *TCPRelay) forward(sh *shaper, line *delayLine, last *time.Time, b []byte, write func([]byte)) bool {
	held := false
	for {
		f, changed := sh.faults()
		if !f.Blackhole {
			break
		}
		if !held {
			held = true
			sh.c.blackholed.Add(1)
		}
		select {
		case <-changed:
		case <-r.stop:
			return false
		}
	}
	v := sh.admit(time.Now(), len(b), true, true)
	if v.copies == 0 { // a blackhole began meanwhile
		return r.forward(sh, line, last, b, write)
	}
	at := v.at
	if at.Before(*last) {
		at = *last
	}
	*last = at
	chunk := append([]byte(nil), b...)
	if v.corrupt {
		corrupt(chunk, 0)
	}
	return line.push(at, chunk, write, true)
}

// Close stops the relay, closes every relayed connection and waits.
func (r *TCPRelay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.stop)
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	return err
}
