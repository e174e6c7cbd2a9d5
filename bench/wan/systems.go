//go:build linux

package wan

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/sys/nats"
	"github.com/wandist/wandist/bench/sys/raw"
	"github.com/wandist/wandist/bench/sys/wandist"
	"github.com/wandist/wandist/bench/workload"
	"github.com/wandist/wandist/client"
)

// System is one system under test, its endpoints in the path's namespaces.
type System interface {
	Name() string
	Start(ctx context.Context) error
	Stop() error
	// Procs are the system's server processes (none for the in-process
	// references).
	Procs() []*proc.Process
	workload.Piper
	workload.RPCer
	// OpenHighRPC opens the request-reply path that should overtake bulk
	// traffic on the same link.
	OpenHighRPC(ctx context.Context) (workload.Caller, error)
}

// binaries are the server programs.
type binaries struct{ wandistd, natsd string }

// newSystem makes system name on path p, its files under dir.
func newSystem(name string, p *Path, bin binaries, dir string) (System, error) {
	switch name {
	case "wandist-quic", "wandist-tcp":
		tr := name[len("wandist-"):]
		return &wandistSys{wandist.System{Wandistd: bin.wandistd, Dir: dir, Transport: tr, Mode: client.Reliable, East: p.Site("east"), West: p.Site("west")}}, nil
	case "wandist-quic4":
		return &wandistSys{wandist.System{Wandistd: bin.wandistd, Dir: dir, Transport: "quic", QUICConns: 4, Mode: client.Reliable, East: p.Site("east"), West: p.Site("west")}}, nil
	case "nats":
		return &natsSys{nats.System{Natsd: bin.natsd, Dir: dir, A: p.Site("east"), B: p.Site("west")}}, nil
	case "raw-tcp-bbr":
		return &rawTCP{path: p, cc: "bbr"}, nil
	case "raw-tcp-cubic":
		return &rawTCP{path: p, cc: "cubic"}, nil
	case "raw-quic-go":
		return &rawQUIC{path: p}, nil
	}
	return nil, fmt.Errorf("wan: system %q: %w (known: %v)", name, ErrUnknown, SystemNames)
}

type wandistSys struct{ wandist.System }

type natsSys struct{ nats.System }

// OpenHighRPC is a request-reply on a subject of its own.
func (s *natsSys) OpenHighRPC(ctx context.Context) (workload.Caller, error) { return s.OpenRPC(ctx) }

// rawTCP is one TCP connection per flow, east to west.
type rawTCP struct {
	path   *Path
	cc     string
	ln     net.Listener
	accept chan net.Conn
	stop   chan struct{} // closed by Stop: the accept loop ends
	done   chan struct{} // closed when the accept loop ended
	mu     sync.Mutex    // serialises opens: each takes the next accepted connection
}

func (s *rawTCP) Name() string           { return "raw-tcp-" + s.cc }
func (s *rawTCP) Procs() []*proc.Process { return nil }

func (s *rawTCP) Start(ctx context.Context) error {
	ln, err := s.path.listenTCP(s.cc)
	if err != nil {
		return fmt.Errorf("%s: listen: %w", s.Name(), err)
	}
	s.ln, s.accept, s.stop, s.done = ln, make(chan net.Conn), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case s.accept <- c:
			case <-s.stop: // its dialer gave up
				c.Close()
				return
			}
		}
	}()
	return nil
}

func (s *rawTCP) Stop() error {
	if s.ln == nil {
		return nil
	}
	close(s.stop)
	err := s.ln.Close()
	<-s.done
	s.ln = nil
	return err
}

// pair dials west from east and returns both ends.
func (s *rawTCP) pair(ctx context.Context) (near, far net.Conn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if near, err = s.path.dialTCP(ctx, s.ln.Addr().String(), s.cc); err != nil {
		return nil, nil, fmt.Errorf("%s: dial: %w", s.Name(), err)
	}
	select {
	case far = <-s.accept:
		return near, far, nil
	case <-ctx.Done():
		near.Close()
		return nil, nil, ctx.Err()
	}
}

func (s *rawTCP) OpenPipe(ctx context.Context, onMsg func([]byte)) (workload.Sender, error) {
	near, far, err := s.pair(ctx)
	if err != nil {
		return nil, err
	}
	return raw.NewPipe(near, far, onMsg), nil
}

func (s *rawTCP) OpenRPC(ctx context.Context) (workload.Caller, error) {
	near, far, err := s.pair(ctx)
	if err != nil {
		return nil, err
	}
	return raw.NewCaller(near, far), nil
}

func (s *rawTCP) OpenHighRPC(ctx context.Context) (workload.Caller, error) { return s.OpenRPC(ctx) }
