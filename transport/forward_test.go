package transport

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// streamForwarder relays byte streams between clients and a target. Once
// silenced it keeps reading both sides but forwards nothing: the peers see
// a live socket that carries no data, like a black-holed path.
type streamForwarder struct {
	ln       net.Listener
	dial     func() (net.Conn, error)
	silenced atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startStreamForwarder(t *testing.T, ln net.Listener, dial func() (net.Conn, error)) *streamForwarder {
	f := &streamForwarder{ln: ln, dial: dial}
	f.wg.Add(1)
	go f.acceptLoop()
	t.Cleanup(f.Close)
	return f
}

func (f *streamForwarder) acceptLoop() {
	defer f.wg.Done()
	for {
		down, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := f.dial()
		if err != nil {
			down.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, down, up)
		f.mu.Unlock()
		f.wg.Add(2)
		go f.pipe(down, up)
		go f.pipe(up, down)
	}
}

func (f *streamForwarder) pipe(src, dst net.Conn) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !f.silenced.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			src.Close()
			if !f.silenced.Load() { // a black hole does not pass on closes either
				dst.Close()
			}
			return
		}
	}
}

func (f *streamForwarder) Addr() string { return f.ln.Addr().String() }

func (f *streamForwarder) Close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// udpForwarder relays datagrams between one client and a target.
// silenced drops everything; dropToClient only what the target sends back.
type udpForwarder struct {
	front, back  *net.UDPConn
	client       atomic.Pointer[net.UDPAddr]
	silenced     atomic.Bool
	dropToClient atomic.Bool
	wg           sync.WaitGroup
}

func startUDPForwarder(t *testing.T, target string) *udpForwarder {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	raddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	f := &udpForwarder{front: front, back: back}
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			f.client.Store(from)
			if !f.silenced.Load() {
				back.Write(buf[:n])
			}
		}
	}()
	go func() {
		defer f.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := back.Read(buf)
			if err != nil {
				if isClosedErr(err) {
					return
				}
				continue // e.g. ICMP port unreachable
			}
			if to := f.client.Load(); to != nil && !f.silenced.Load() && !f.dropToClient.Load() {
				front.WriteToUDP(buf[:n], to)
			}
		}
	}()
	t.Cleanup(f.Close)
	return f
}

func (f *udpForwarder) Addr() string { return f.front.LocalAddr().String() }

func (f *udpForwarder) Close() {
	f.front.Close()
	f.back.Close()
	f.wg.Wait()
}

func isClosedErr(err error) bool { return errors.Is(err, net.ErrClosed) }
