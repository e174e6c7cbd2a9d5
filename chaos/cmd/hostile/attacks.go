package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/daemon"
	"github.com/wandist/wandist/internal/hostile"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// An attack runs until ctx ends and reports what it sent.
type attack struct {
	name string
	what string // what the attacker does, for the report
	run  func(ctx context.Context, target *proc, volume *atomic.Int64) string
}

var attacks = []attack{
	{"quic-initials", "4,000 QUIC Initials a second with random connection IDs, each the start of a ClientHello that never ends, from 16 addresses", quicInitials},
	{"slowloris", "256 idle TCP connections from one address, each reopened a second after it is closed", slowloris},
	{"handshakes-50", "200 TLS handshakes a second without a client certificate, from 50 addresses (TCP and QUIC)", handshakes50},
	{"membership", "a pinned peer sending membership joins (partitioned, 512 partitions each, a new group each) as fast as the link takes them, and a snapshot that never ends", membershipFlood},
}

func quicInitials(ctx context.Context, target *proc, volume *atomic.Int64) string {
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: target.quic}
	var srcs []*net.UDPConn
	for i := range 16 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 3, byte(1+i))})
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		srcs = append(srcs, c)
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; ; {
		select {
		case <-ctx.Done():
			return fmt.Sprintf("%d Initials", volume.Load())
		case <-tick.C:
		}
		for range 4 {
			srcs[i%len(srcs)].WriteToUDP(hostile.QUICInitial(), dst)
			volume.Add(1)
			i++
		}
	}
}

func slowloris(ctx context.Context, target *proc, volume *atomic.Int64) string {
	addr := fmt.Sprintf("127.0.0.1:%d", target.tcp)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 4, 1)}}
	var wg sync.WaitGroup
	for range 256 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
					volume.Add(1)
					stop := context.AfterFunc(ctx, func() { c.Close() })
					c.Read(make([]byte, 1)) // until the daemon closes it
					stop()
					c.Close()
				}
				select { // and open another a second later
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		})
	}
	wg.Wait()
	return fmt.Sprintf("%d connections opened", volume.Load())
}

func handshakes50(ctx context.Context, target *proc, volume *atomic.Int64) string {
	conf := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{daemon.ALPN}, ServerName: auth.ServerName}
	var wg sync.WaitGroup
	for i := range 50 {
		src := net.IPv4(127, 0, 2, byte(10+i))
		wg.Go(func() {
			// 4/s from each: 200/s, the sources not in step.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(rand.Int64N(int64(250 * time.Millisecond)))):
			}
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				volume.Add(1)
				if n%2 == 0 {
					tlsHandshake(ctx, src, target.tcp, conf)
				} else {
					quicHandshake(ctx, src, target.quic, conf)
				}
			}
		})
	}
	wg.Wait()
	return fmt.Sprintf("%d handshakes started", volume.Load())
}

func tlsHandshake(ctx context.Context, src net.IP, port int, conf *tls.Config) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 2 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(2 * time.Second))
	c := tls.Client(raw, conf)
	if c.Handshake() == nil {
		c.Read(make([]byte, 1))
	}
}

func quicHandshake(ctx context.Context, src net.IP, port int, conf *tls.Config) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: src})
	if err != nil {
		return
	}
	qt := &quic.Transport{Conn: udp}
	defer func() { qt.Close(); udp.Close() }()
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	qc, err := qt.Dial(hctx, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, conf, &quic.Config{HandshakeIdleTimeout: 2 * time.Second})
	if err == nil {
		qc.AcceptUniStream(hctx) // the daemon refuses an unauthenticated client
		qc.CloseWithError(0, "")
	}
}

// membershipFlood links to target as the pinned rogue node and floods
// membership.
func membershipFlood(ctx context.Context, target *proc, volume *atomic.Int64) string {
	ctl, conn, err := rogueLink(ctx, target)
	if err != nil {
		return "rogue link failed: " + err.Error()
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// Drain what the target sends (its snapshot, keepalives, acks).
	go func() {
		b := make([]byte, 64<<10)
		for {
			if _, err := ctl.Read(b); err != nil {
				return
			}
		}
	}()
	parts := make([]uint64, 512)
	for i := range parts {
		parts[i] = uint64(i)
	}
	// An empty snapshot, then joins for half of the time, then a snapshot
	// that never ends.
	buf := wire.AppendFrame(nil, &wire.MembersSnapshot{Incarnation: 1, Version: 1})
	if _, err := ctl.Write(buf); err != nil {
		return "rogue snapshot: " + err.Error()
	}
	deadline, _ := ctx.Deadline()
	half := time.Now().Add(time.Until(deadline) / 2)
	v := uint64(2)
	for ; ctx.Err() == nil && time.Now().Before(half); v++ {
		buf = wire.AppendFrame(buf[:0], &wire.MembersDelta{Incarnation: 1, Version: v, Op: wire.OpJoin,
			Group: fmt.Sprintf("rogue-%d", v), Mailbox: v, PartitionCount: 1 << 16, Partitions: parts})
		if _, err := ctl.Write(buf); err != nil {
			return fmt.Sprintf("%.0f MB of joins, then the link ended: %v", float64(volume.Load())/1e6, err)
		}
		volume.Add(int64(len(buf)))
	}
	joins := volume.Load()
	snap := &wire.MembersSnapshot{Incarnation: 1, Version: v, More: true}
	for i := range 200 {
		snap.Members = append(snap.Members, wire.Member{Group: fmt.Sprintf("snap-%d", i), Mailbox: uint64(i + 1), Count: 1, PartitionCount: 1 << 16, Partitions: parts})
	}
	for ctx.Err() == nil {
		for i := range snap.Members {
			snap.Members[i].Mailbox += 200
		}
		buf = wire.AppendFrame(buf[:0], snap)
		if _, err := ctl.Write(buf); err != nil {
			break
		}
		volume.Add(int64(len(buf)))
	}
	return fmt.Sprintf("%.0f MB of joins, then %.0f MB of a snapshot that never ends", float64(joins)/1e6, float64(volume.Load()-joins)/1e6)
}

// rogueLink dials target as rogue-1 (pinned by it) and completes the link
// handshake by hand.
func rogueLink(ctx context.Context, target *proc) (transport.Stream, transport.Conn, error) {
	key, err := auth.LoadKeyFile(rogueKeyPath)
	if err != nil {
		return nil, nil, err
	}
	targetPub, err := auth.ParsePublicKey(target.pub)
	if err != nil {
		return nil, nil, err
	}
	targetID := auth.PeerID{Cluster: target.cluster, Node: target.name}
	pins := auth.NewPinSet()
	pins.Set(targetID, []ed25519.PublicKey{targetPub})
	id := auth.Identity{ID: auth.PeerID{Cluster: "rogue", Node: "rogue-1"}, Key: key}
	tc, err := auth.ClientTLSConfig(id, pins, targetID, []string{daemon.ALPN}, nil)
	if err != nil {
		return nil, nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := transport.NewTCP(transport.Options{}).Dial(hctx, fmt.Sprintf("127.0.0.1:%d", target.tcp), tc)
	if err != nil {
		return nil, nil, err
	}
	ctl, err := conn.OpenStream(hctx)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	ctl.Write(wire.AppendFrame(nil, &wire.Hello{Cluster: "rogue", Node: "rogue-1", Incarnation: 1, MaxFrame: 1 << 20}))
	r := wire.NewReader(ctl, 1<<20)
	typ, body, err := r.ReadFrame()
	var w wire.Welcome
	if err != nil || typ != wire.TypeWelcome || w.DecodeBody(body) != nil || w.Status != wire.WelcomeOK {
		conn.Close()
		return nil, nil, fmt.Errorf("welcome: %v %v %+v", typ, err, w)
	}
	ctl.Write(wire.AppendFrame(nil, &wire.Ready{}))
	return ctl, conn, nil
}
