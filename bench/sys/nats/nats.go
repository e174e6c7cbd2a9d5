// Package nats runs NATS in the side-by-side benchmark: two nats-server
// processes (bench/cmd/natsd), clusters A and B joined by a gateway, with a
// nats.go publisher connected to A and a subscriber to B: client → server →
// gateway → server → client.
package nats

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/wandist/wandist/bench/netutil"
	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/proxy"
	"github.com/wandist/wandist/bench/workload"
)

// System is two gateway-linked nats-servers.
type System struct {
	Natsd   string // path of the natsd binary
	Dir     string // log directory
	Proxied bool   // both gateway connections go through a cut-able proxy
	// A and B are where the servers run (namespace, listen address);
	// zero: loopback in the current namespace. Proxied needs loopback.
	A, B netutil.Site

	procs          []*proc.Process
	proxies        []*proxy.TCP
	urlA, urlB     string
	pub, sub       *natsgo.Conn // on A, on B
	req, srv       *natsgo.Conn // on A, on B
	next           int
	subDisconnects atomic.Int64 // the subscriber's connection was lost (a slow consumer is cut by the server)
	slowConsumer   atomic.Int64 // the subscriber's client dropped messages (pending limits)
}

// Name implements harness.System.
func (s *System) Name() string { return "nats" }

// Procs returns the two servers.
func (s *System) Procs() []*proc.Process { return s.procs }

// Start starts both servers, waits for their gateways, and connects the clients.
func (s *System) Start(ctx context.Context) error {
	ports := make([]int, 4) // A client, A gateway, B client, B gateway
	for i := range ports {
		p, err := netutil.FreePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	hostA, hostB := s.A.ListenHost(), s.B.ListenHost()
	gwA, gwB := fmt.Sprintf("%s:%d", hostA, ports[1]), fmt.Sprintf("%s:%d", hostB, ports[3])
	dialA, dialB := gwA, gwB // what B dials to reach A, and A to reach B
	if s.Proxied {
		pa, err := proxy.NewTCP("127.0.0.1:0", gwA)
		if err != nil {
			return err
		}
		pb, err := proxy.NewTCP("127.0.0.1:0", gwB)
		if err != nil {
			pa.Close()
			return err
		}
		s.proxies = []*proxy.TCP{pa, pb}
		dialA, dialB = pa.Addr(), pb.Addr()
	}
	args := func(host string, name string, port, gw int, advertise, remote string) []string {
		return []string{"-host", host, "-name", name, "-port", strconv.Itoa(port), "-gw-port", strconv.Itoa(gw), "-advertise", advertise, "-remotes", remote}
	}
	for _, sp := range []struct {
		proc.Spec
		site netutil.Site
	}{
		{proc.Spec{Name: "nats-A", Args: args(hostA, "A", ports[0], ports[1], dialA, "B="+dialB)}, s.A},
		{proc.Spec{Name: "nats-B", Args: args(hostB, "B", ports[2], ports[3], dialB, "A="+dialA)}, s.B},
	} {
		sp.Path, sp.Args = sp.site.Command(s.Natsd, sp.Args)
		sp.LogDir, sp.Capture = s.Dir, true
		p, err := proc.Start(sp.Spec)
		if err != nil {
			return err
		}
		s.procs = append(s.procs, p)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, p := range s.procs {
		if _, err := p.WaitLine(wctx, "gateways up"); err != nil {
			return err
		}
	}
	s.urlA, s.urlB = fmt.Sprintf("nats://%s:%d", hostA, ports[0]), fmt.Sprintf("nats://%s:%d", hostB, ports[2])
	var err error
	if s.pub, err = s.connect(s.urlA, "bench-pub", s.A); err != nil {
		return err
	}
	if s.req, err = s.connect(s.urlA, "bench-req", s.A); err != nil {
		return err
	}
	if s.sub, err = s.connect(s.urlB, "bench-sub", s.B); err != nil {
		return err
	}
	s.srv, err = s.connect(s.urlB, "bench-srv", s.B)
	return err
}

// siteDialer dials a server's client port from inside its namespace.
type siteDialer struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (d siteDialer) Dial(network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.dial(ctx, network, addr)
}

func (s *System) connect(url, name string, site netutil.Site) (*natsgo.Conn, error) {
	opts := []natsgo.Option{natsgo.Name(name), natsgo.MaxReconnects(-1), natsgo.ReconnectWait(100 * time.Millisecond)}
	if site.Dial != nil {
		opts = append(opts, natsgo.SetCustomDialer(siteDialer{site.Dial}))
	}
	nc, err := natsgo.Connect(url, append(opts,
		natsgo.DisconnectErrHandler(func(*natsgo.Conn, error) {
			if name == "bench-sub" {
				s.subDisconnects.Add(1)
			}
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			if errors.Is(err, natsgo.ErrSlowConsumer) {
				s.slowConsumer.Add(1)
			}
		}))...)
	if err != nil {
		return nil, fmt.Errorf("connect %s to %s: %w", name, url, err)
	}
	return nc, nil
}

// Stop closes the clients, stops the servers and the proxies.
func (s *System) Stop() error {
	for _, c := range []*natsgo.Conn{s.pub, s.sub, s.req, s.srv} {
		if c != nil {
			c.Close()
		}
	}
	var errs []error
	for _, p := range s.procs {
		errs = append(errs, p.Stop(10*time.Second))
	}
	for _, p := range s.proxies {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// SetCut cuts or heals both gateway connections (Proxied only).
func (s *System) SetCut(on bool) {
	for _, p := range s.proxies {
		p.SetCut(on)
	}
}

// CutKind says how the path is cut.
func (s *System) CutKind() string { return "TCP reset, redials refused" }

func (s *System) subject(prefix string) string {
	s.next++
	return fmt.Sprintf("%s.%d", prefix, s.next)
}

// awaitInterest waits until a message published on pub reaches a
// subscription made on sub after everything before it: interest crosses the
// gateway in order, so the earlier subscriptions are known on the far side.
func awaitInterest(ctx context.Context, pub, sub *natsgo.Conn, subject string) error {
	probe := subject + ".probe"
	got := make(chan struct{}, 1)
	ps, err := sub.Subscribe(probe, func(*natsgo.Msg) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return err
	}
	defer ps.Unsubscribe()
	if err := sub.Flush(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if err := pub.Publish(probe, nil); err != nil {
			return err
		}
		select {
		case <-got:
			return nil
		case <-t.C:
		case <-wctx.Done():
			return fmt.Errorf("interest in %s across the gateway: %w", subject, wctx.Err())
		}
	}
}

// OpenPipe implements workload.Piper: a subscription on B, publishing on A.
func (s *System) OpenPipe(ctx context.Context, onMsg func([]byte)) (workload.Sender, error) {
	subj := s.subject("stream")
	sb, err := s.sub.Subscribe(subj, func(m *natsgo.Msg) { onMsg(m.Data) })
	if err != nil {
		return nil, err
	}
	if err := awaitInterest(ctx, s.pub, s.sub, subj); err != nil {
		sb.Unsubscribe()
		return nil, err
	}
	return &pipe{s: s, nc: s.pub, sub: sb, subject: subj, disc0: s.subDisconnects.Load()}, nil
}

type pipe struct {
	s       *System
	nc      *natsgo.Conn
	sub     *natsgo.Subscription
	subject string
	disc0   int64
	once    sync.Once
}

func (p *pipe) Send(b []byte) error { return p.nc.Publish(p.subject, b) }
func (p *pipe) Sync(ctx context.Context) error {
	if _, ok := ctx.Deadline(); ok {
		return p.nc.FlushWithContext(ctx) // it requires a deadline
	}
	return p.nc.FlushTimeout(time.Minute)
}

// Note reports what the subscriber's client dropped and how often the
// server cut the subscriber off.
func (p *pipe) Note() string {
	var notes []string
	if d, err := p.sub.Dropped(); err == nil && d > 0 {
		notes = append(notes, fmt.Sprintf("subscriber's client dropped %d (pending limits)", d))
	}
	if d := p.s.subDisconnects.Load() - p.disc0; d > 0 {
		notes = append(notes, fmt.Sprintf("server cut the subscriber off %d times (slow consumer; see nats-B.log)", d))
	}
	return strings.Join(notes, "; ")
}

func (p *pipe) Close() error {
	p.once.Do(func() { _ = p.sub.Unsubscribe() })
	return nil
}

// OpenRPC implements workload.RPCer: a responder on B echoes, A requests.
func (s *System) OpenRPC(ctx context.Context) (workload.Caller, error) {
	subj := s.subject("rpc")
	sb, err := s.srv.Subscribe(subj, func(m *natsgo.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		return nil, err
	}
	if err := awaitInterest(ctx, s.req, s.srv, subj); err != nil {
		sb.Unsubscribe()
		return nil, err
	}
	return &caller{nc: s.req, sub: sb, subject: subj}, nil
}

type caller struct {
	nc      *natsgo.Conn
	sub     *natsgo.Subscription
	subject string
}

func (c *caller) Call(ctx context.Context, p []byte) ([]byte, error) {
	m, err := c.nc.RequestWithContext(ctx, c.subject, p)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

func (c *caller) Close() error { return c.sub.Unsubscribe() }

// GroupMembers makes members subscriptions on B over groups subjects
// (members/groups connections, each subscribing to every subject), waits
// until A knows the interest, and reads both servers' resident memory before
// and after.
func (s *System) GroupMembers(ctx context.Context, members, groups int) (res workload.GroupMemResult, err error) {
	res.Members, res.Groups = members, groups
	a, b := s.procs[0], s.procs[1]
	ab, err := a.Read()
	if err != nil {
		return res, err
	}
	bb, err := b.Read()
	if err != nil {
		return res, err
	}
	res.RemoteBase, res.LocalBase = ab.RSS, bb.RSS
	start := time.Now()
	conns := max(1, members/groups)
	var last *natsgo.Conn
	for i := range conns {
		nc, err := s.connect(s.urlB, fmt.Sprintf("bench-members-%d", i), s.B)
		if err != nil {
			return res, err
		}
		defer nc.Close()
		for g := range groups {
			if _, err := nc.Subscribe("members."+strconv.Itoa(g), func(*natsgo.Msg) {}); err != nil {
				return res, err
			}
		}
		if err := nc.Flush(); err != nil {
			return res, err
		}
		last = nc
	}
	if err := awaitInterest(ctx, s.pub, last, "members"); err != nil {
		return res, err
	}
	res.Propagate = time.Since(start)
	time.Sleep(2 * time.Second) // idle before reading memory
	aa, err := a.Read()
	if err != nil {
		return res, err
	}
	ba, err := b.Read()
	if err != nil {
		return res, err
	}
	res.RemoteAfter, res.LocalAfter = aa.RSS, ba.RSS
	res.Members = conns * groups
	res.Note = fmt.Sprintf("%d connections × %d subjects on B; A measured (gateway interest-only mode)", conns, groups)
	return res, nil
}
