package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// MemNetwork is a registry of in-memory listeners, addressed by name.
// Transports made from the same MemNetwork reach each other's listeners.
type MemNetwork struct {
	mu  sync.Mutex
	ls  map[string]*memRawListener
	seq atomic.Uint64
}

// NewMemNetwork returns an empty, isolated MemNetwork.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{ls: make(map[string]*memRawListener)}
}

// defaultMemNetwork is the process-global registry used by NewMem.
var defaultMemNetwork = NewMemNetwork()

// NewMem returns an in-memory Transport (a buffered in-memory pipe, like
// net.Pipe but with socket-like buffering, + TLS 1.3 + yamux) on the
// process-global MemNetwork, for tests. Addresses are arbitrary names;
// listening on "" picks a fresh unique name (see Listener.Addr). Listening
// on a name in use fails with an error matching syscall.EADDRINUSE; dialing
// a name nobody listens on fails with a *net.OpError matching
// syscall.ECONNREFUSED.
func NewMem(o Options) Transport { return defaultMemNetwork.Transport(o) }

// Transport returns an in-memory Transport on n; see NewMem.
func (n *MemNetwork) Transport(o Options) Transport {
	return &memTransport{n: n, o: o.withDefaults()}
}

type memTransport struct {
	n *MemNetwork
	o Options
}

func (t *memTransport) Name() string { return "mem" }

func (t *memTransport) Listen(addr string, tlsConf *tls.Config) (Listener, error) {
	conf, err := prepareTLS(tlsConf)
	if err != nil {
		return nil, err
	}
	raw, err := t.n.listenRaw(addr)
	if err != nil {
		return nil, err
	}
	return newTLSMuxListener("mem", raw, conf, t.o, nil), nil
}

func (t *memTransport) Dial(ctx context.Context, addr string, tlsConf *tls.Config) (Conn, error) {
	conf, err := prepareClientTLS(tlsConf, addr)
	if err != nil {
		return nil, err
	}
	rc, err := t.n.dialRaw(ctx, addr)
	if err != nil {
		return nil, err
	}
	c, err := clientHandshake(ctx, "mem", rc, conf, t.o)
	if err != nil {
		return nil, dialError(ctx, "mem", memAddr(addr), err)
	}
	return c, nil
}

// memAddr is the address of a mem endpoint.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// listenRaw registers a raw listener under addr ("" picks a unique name).
func (n *MemNetwork) listenRaw(addr string) (*memRawListener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr == "" {
		for addr == "" || n.ls[addr] != nil {
			addr = fmt.Sprintf("mem-%d", n.seq.Add(1))
		}
	}
	if n.ls[addr] != nil {
		return nil, &net.OpError{Op: "listen", Net: "mem", Addr: memAddr(addr),
			Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	}
	l := &memRawListener{n: n, addr: memAddr(addr), ch: make(chan net.Conn), done: make(chan struct{})}
	n.ls[addr] = l
	return l, nil
}

// dialRaw connects to the raw listener addr through a mem pipe.
func (n *MemNetwork) dialRaw(ctx context.Context, addr string) (net.Conn, error) {
	refused := &net.OpError{Op: "dial", Net: "mem", Addr: memAddr(addr),
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	n.mu.Lock()
	l := n.ls[addr]
	n.mu.Unlock()
	if l == nil {
		return nil, refused
	}
	local := memAddr(fmt.Sprintf("mem-client-%d", n.seq.Add(1)))
	client, server := newMemPipe(local, l.addr)
	select {
	case l.ch <- server:
		return client, nil
	case <-l.done:
		client.Close()
		return nil, refused
	case <-ctx.Done():
		client.Close()
		return nil, dialError(ctx, "mem", l.addr, ctx.Err())
	}
}

// memRawListener is a net.Listener of mem pipe ends.
type memRawListener struct {
	n    *MemNetwork
	addr memAddr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *memRawListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "mem", Addr: l.addr, Err: net.ErrClosed}
	}
}

func (l *memRawListener) Close() error {
	l.once.Do(func() {
		l.n.mu.Lock()
		if l.n.ls[string(l.addr)] == l {
			delete(l.n.ls, string(l.addr))
		}
		l.n.mu.Unlock()
		close(l.done)
	})
	return nil
}

func (l *memRawListener) Addr() net.Addr { return l.addr }
