package wandist

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wandist/wandist/bench/netutil"
	"github.com/wandist/wandist/bench/workload"
	"github.com/wandist/wandist/client"
)

func (s *System) group(prefix string) string {
	s.next++
	return fmt.Sprintf("%s%d", prefix, s.next)
}

// join opens a mailbox on c joined to group and waits until from's daemon
// sees it as a reachable member.
func join(ctx context.Context, c, from *client.Client, group string) (*client.Mailbox, error) {
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		return nil, fmt.Errorf("new mailbox: %w", err)
	}
	if err := mb.Join(ctx, group); err != nil {
		return nil, fmt.Errorf("join %s: %w", group, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = netutil.Poll(wctx, 5*time.Millisecond, "group "+group+" seen across the link", func() (bool, error) {
		ms, err := from.Members(wctx, group)
		if err != nil {
			return false, err
		}
		for _, m := range ms {
			if m.Addr == mb.Addr() && m.Reachable {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return mb, nil
}

func (s *System) opts() []client.SendOption {
	return []client.SendOption{client.WithMode(s.Mode)}
}

// OpenPipe implements workload.Piper: a mailbox on west joins a fresh group,
// east's client sends to the group.
func (s *System) OpenPipe(ctx context.Context, onMsg func([]byte)) (workload.Sender, error) {
	g := s.group("stream")
	mb, err := join(ctx, s.sub, s.pub, g)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	p := &pipe{c: s.pub, mb: mb, target: client.Target{Group: g}, opts: s.opts(), cancel: cancel, done: make(chan struct{}), west: s.west}
	p.dropped0, _ = s.west.dropped(ctx)
	go func() {
		defer close(p.done)
		for {
			m, err := mb.Receive(rctx)
			if err != nil {
				return
			}
			onMsg(m.Payload)
		}
	}()
	return p, nil
}

type pipe struct {
	c      *client.Client
	mb     *client.Mailbox
	target client.Target
	opts   []client.SendOption
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	west     *node
	dropped0 map[string]float64 // west's drop counters when the pipe opened
}

func (p *pipe) Send(b []byte) error            { return p.c.SendAsync(p.target, b, p.opts...) }
func (p *pipe) Sync(ctx context.Context) error { return p.c.Flush(ctx) }

// Note reports deliveries the receiving SDK mailbox dropped (inbox full)
// and messages west's daemon dropped, by reason, while the pipe was open.
func (p *pipe) Note() string {
	var notes []string
	if d := p.mb.Dropped(); d > 0 {
		notes = append(notes, fmt.Sprintf("receiver's SDK inbox dropped %d", d))
	}
	if now, err := p.west.dropped(context.Background()); err == nil {
		for _, reason := range slices.Sorted(maps.Keys(now)) {
			if d := now[reason] - p.dropped0[reason]; d > 0 {
				notes = append(notes, fmt.Sprintf("west-1 dropped %.0f (%s)", d, reason))
			}
		}
	}
	return strings.Join(notes, "; ")
}

func (p *pipe) Close() error {
	p.once.Do(func() {
		p.cancel()
		<-p.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.mb.Close(ctx)
	})
	return nil
}

// OpenRPC implements workload.RPCer: a mailbox on west joins a fresh group
// and echoes each request (64 handlers at once); east calls the group.
func (s *System) OpenRPC(ctx context.Context) (workload.Caller, error) {
	return s.openRPC(ctx, s.opts())
}

// OpenHighRPC is OpenRPC with requests and replies on the high-priority
// lane (client.WithHighPriority).
func (s *System) OpenHighRPC(ctx context.Context) (workload.Caller, error) {
	return s.openRPC(ctx, append(s.opts(), client.WithHighPriority()))
}

func (s *System) openRPC(ctx context.Context, opts []client.SendOption) (workload.Caller, error) {
	g := s.group("rpc")
	mb, err := join(ctx, s.srv, s.req, g)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mb.Serve(sctx, 64, func(ctx context.Context, m *client.Message) {
			_ = m.Reply(ctx, m.Payload, opts...)
		})
	}()
	return &caller{c: s.req, group: g, opts: opts, mb: mb, cancel: cancel, done: done}, nil
}

type caller struct {
	c      *client.Client
	group  string
	opts   []client.SendOption
	mb     *client.Mailbox
	cancel context.CancelFunc
	done   chan struct{}
}

func (c *caller) Call(ctx context.Context, p []byte) ([]byte, error) {
	m, err := c.c.CallGroup(ctx, c.group, p, c.opts...)
	if err != nil {
		return nil, err
	}
	return m.Payload, nil
}

func (c *caller) Close() error {
	c.cancel()
	<-c.done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.mb.Close(ctx)
}
