package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"
)

// result is what one side of a handshake saw.
type result struct {
	err   error // handshake error, or the error of the one-byte exchange after it
	state tls.ConnectionState
}

// handshake runs a TLS handshake between serverCfg and clientCfg over
// net.Pipe, both sides at once. After a successful handshake the server
// writes one byte that the client reads, so that a rejection the server
// decides after the client finished (TLS 1.3 clients finish first) reaches
// the client as an error.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (server, client result) {
	t.Helper()
	sRaw, cRaw := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	sRaw.SetDeadline(deadline)
	cRaw.SetDeadline(deadline)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	sConn := tls.Server(newAsyncConn(sRaw), serverCfg)
	cConn := tls.Client(newAsyncConn(cRaw), clientCfg)

	var wg sync.WaitGroup
	wg.Go(func() {
		server.err = sConn.HandshakeContext(ctx)
		server.state = sConn.ConnectionState()
		if server.err == nil {
			_, server.err = sConn.Write([]byte{'x'})
		}
	})
	wg.Go(func() {
		client.err = cConn.HandshakeContext(ctx)
		client.state = cConn.ConnectionState()
		if client.err == nil {
			_, client.err = cConn.Read(make([]byte, 1))
		}
	})
	wg.Wait()
	sConn.Close()
	cConn.Close()
	return server, client
}

// asyncConn makes writes to one end of a net.Pipe return at once, in order,
// as writes to a socket with kernel buffers do. Without it, a side that
// rejects its peer (and writes an alert) while the peer is still writing
// its own flight would deadlock: net.Pipe writes wait for the reader.
type asyncConn struct {
	net.Conn
	queue chan []byte
	done  chan struct{}
	once  sync.Once
}

func newAsyncConn(c net.Conn) *asyncConn {
	a := &asyncConn{Conn: c, queue: make(chan []byte, 64), done: make(chan struct{})}
	go a.writeLoop()
	return a
}

func (a *asyncConn) writeLoop() {
	defer close(a.done)
	failed := false
	for b := range a.queue {
		if !failed {
			_, err := a.Conn.Write(b)
			failed = err != nil
		}
	}
}

// Write queues b; it is meant for a single writing goroutine, before Close.
func (a *asyncConn) Write(b []byte) (int, error) {
	a.queue <- bytes.Clone(b)
	return len(b), nil
}

func (a *asyncConn) Close() error {
	a.once.Do(func() { close(a.queue) })
	err := a.Conn.Close()
	<-a.done
	return err
}

// rejections records the errors passed to onReject.
type rejections struct {
	mu   sync.Mutex
	errs []*RejectError
}

func (r *rejections) add(e *RejectError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, e)
}

func (r *rejections) get() []*RejectError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*RejectError(nil), r.errs...)
}
