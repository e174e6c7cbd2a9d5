// Package raw is the benchmark's baseline: a chain of two relay processes
// (bench/cmd/relay) between a sending and a receiving client, with the same
// number of hops as the other systems (client → relay → relay → client) and
// length-prefixed frames through buffered writes, but no acknowledgements,
// no reliability and no routing: the practical limit of this machine.
package raw

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/wandist/wandist/bench/frame"
	"github.com/wandist/wandist/bench/payload"
	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/workload"
)

const bufSize = 64 << 10

// System is the raw relay chain.
type System struct {
	Relay  string // path of the relay binary
	LogDir string

	ln     net.Listener
	entry  string // relay1's address
	accept chan net.Conn
	procs  []*proc.Process
	mu     sync.Mutex // serialises opens: each takes the next accepted connection
}

// Name implements harness.System.
func (s *System) Name() string { return "raw-relay" }

// Procs returns the relay processes.
func (s *System) Procs() []*proc.Process { return s.procs }

// Start starts the driver's listener and the two relays.
func (s *System) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("raw: listen: %w", err)
	}
	s.ln, s.accept = ln, make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(s.accept)
				return
			}
			s.accept <- c
		}
	}()
	target := ln.Addr().String()
	for _, name := range []string{"relay2", "relay1"} {
		p, err := proc.Start(proc.Spec{Name: name, Path: s.Relay, Args: []string{"-listen", "127.0.0.1:0", "-target", target}, LogDir: s.LogDir, Capture: true})
		if err != nil {
			return err
		}
		s.procs = append([]*proc.Process{p}, s.procs...)
		l, err := p.WaitLine(ctx, "ready")
		if err != nil {
			return err
		}
		target = strings.TrimSpace(strings.TrimPrefix(l, "ready"))
	}
	s.entry = target
	return nil
}

// Stop stops the relays and the listener.
func (s *System) Stop() error {
	var errs []error
	for _, p := range s.procs {
		errs = append(errs, p.Stop(5*time.Second))
	}
	if s.ln != nil {
		errs = append(errs, s.ln.Close())
	}
	return errors.Join(errs...)
}

// chain dials the first relay and returns that connection and the one the
// last relay opened to the driver.
func (s *System) chain(ctx context.Context) (near, far net.Conn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d net.Dialer
	near, err = d.DialContext(ctx, "tcp", s.entry)
	if err != nil {
		return nil, nil, fmt.Errorf("raw: dial relay1: %w", err)
	}
	select {
	case far = <-s.accept:
	case <-ctx.Done():
		near.Close()
		return nil, nil, ctx.Err()
	}
	return near, far, nil
}

// OpenPipe implements workload.Piper over a new chain of connections.
func (s *System) OpenPipe(ctx context.Context, onMsg func([]byte)) (workload.Sender, error) {
	near, far, err := s.chain(ctx)
	if err != nil {
		return nil, err
	}
	return NewPipe(near, far, onMsg), nil
}

// NewPipe is a one-way stream of length-prefixed frames written to near
// and read from far, whose payloads go to onMsg (from one goroutine).
func NewPipe(near, far io.ReadWriteCloser, onMsg func([]byte)) workload.Sender {
	p := &pipe{conn: near, far: far, w: bufio.NewWriterSize(near, bufSize), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		r := frame.NewReader(far, bufSize)
		for {
			b, err := r.Read()
			if err != nil {
				return
			}
			onMsg(b)
		}
	}()
	return p
}

type pipe struct {
	conn, far io.ReadWriteCloser
	w         *bufio.Writer
	done      chan struct{}
}

func (p *pipe) Send(b []byte) error            { return frame.Write(p.w, b) }
func (p *pipe) Sync(ctx context.Context) error { return p.w.Flush() }
func (p *pipe) Close() error {
	p.conn.Close()
	p.far.Close()
	<-p.done
	return nil
}

// OpenRPC implements workload.RPCer: the driver's far end echoes every frame.
func (s *System) OpenRPC(ctx context.Context) (workload.Caller, error) {
	near, far, err := s.chain(ctx)
	if err != nil {
		return nil, err
	}
	return NewCaller(near, far), nil
}

// NewCaller is request-reply over a stream: requests are framed onto near,
// far echoes every frame, replies are matched to requests by the
// payload's sequence number.
func NewCaller(near, far io.ReadWriteCloser) workload.Caller {
	go func() { // echo server
		_ = frame.Forward(bufio.NewWriterSize(far, bufSize), frame.NewReader(far, bufSize))
		far.Close()
	}()
	c := &caller{conn: near, far: far, w: bufio.NewWriterSize(near, bufSize), waiting: map[uint64]chan []byte{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	go c.write()
	return c
}

// caller matches replies to requests by the payload's sequence number; a
// writer goroutine coalesces concurrent requests into one flush.
type caller struct {
	conn, far io.ReadWriteCloser
	w         *bufio.Writer
	mu        sync.Mutex
	out       [][]byte
	waiting   map[uint64]chan []byte
	wake      chan struct{}
	done      chan struct{}
}

func (c *caller) Call(ctx context.Context, p []byte) ([]byte, error) {
	if len(p) < payload.HeaderSize {
		return nil, payload.ErrTooSmall
	}
	seq := binary.BigEndian.Uint64(p)
	ch := make(chan []byte, 1)
	c.mu.Lock()
	c.waiting[seq] = ch
	c.out = append(c.out, p)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	defer func() {
		c.mu.Lock()
		delete(c.waiting, seq)
		c.mu.Unlock()
	}()
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, net.ErrClosed
	}
}

func (c *caller) write() {
	var batch [][]byte
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		batch, c.out = c.out, batch[:0]
		c.mu.Unlock()
		for _, b := range batch {
			if frame.Write(c.w, b) != nil {
				return
			}
		}
		if c.w.Flush() != nil {
			return
		}
		clear(batch)
	}
}

func (c *caller) read() {
	defer close(c.done)
	r := frame.NewReader(c.conn, bufSize)
	for {
		b, err := r.Read()
		if err != nil {
			return
		}
		if len(b) < payload.HeaderSize {
			continue
		}
		seq := binary.BigEndian.Uint64(b)
		c.mu.Lock()
		ch := c.waiting[seq]
		delete(c.waiting, seq)
		c.mu.Unlock()
		if ch != nil {
			ch <- append([]byte(nil), b...)
		}
	}
}

func (c *caller) Close() error {
	c.conn.Close()
	c.far.Close()
	<-c.done
	return nil
}
