// Package demo runs two wandist clusters of one node each in one process on
// loopback, with fresh keys and a real QUIC link through a UDP relay that can
// cut it, streams messages from a publisher in one cluster to a subscriber in
// the other, breaks and heals the link once, and reports what was sent,
// delivered, lost and duplicated.
package demo

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
)

// Options tune the demo. The zero value works.
type Options struct {
	Messages int           // messages to publish; default 5000
	Outage   time.Duration // how long the link is cut; default 3s
	Dir      string        // where keys and sockets go; default a new temp dir (removed after)
	Logger   *slog.Logger  // daemon logs; default discarded
}

// Report is what the demo observed.
type Report struct {
	Sent, Delivered, Lost, Duplicated, OutOfOrder int
	Reconnects                                    uint64
	Redelivered                                   uint64
	LinkDownAfter                                 time.Duration // from the cut to the link being declared down
	LinkUpAfter                                   time.Duration // from the heal to the link being up again
}

const group = "demo"

// Run runs the demo, narrating to out.
func Run(ctx context.Context, out io.Writer, o Options) (rep Report, err error) {
	if o.Messages <= 0 {
		o.Messages = 5000
	}
	if o.Outage <= 0 {
		o.Outage = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "wandist-demo-"); err != nil {
			return rep, err
		}
		defer os.RemoveAll(dir)
	}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }

	eastKey, err := auth.GenerateKeyFile(filepath.Join(dir, "east-1.key"), true)
	if err != nil {
		return rep, err
	}
	westKey, err := auth.GenerateKeyFile(filepath.Join(dir, "west-1.key"), true)
	if err != nil {
		return rep, err
	}
	say("keys:  east/east-1 %s", auth.FormatPublicKey(eastKey.Public().(ed25519.PublicKey)))
	say("       west/west-1 %s", auth.FormatPublicKey(westKey.Public().(ed25519.PublicKey)))

	// east accepts, west dials it through a relay that can cut the path.
	eastCfg := nodeConfig("east", "east-1", dir)
	eastCfg.Listen.QUIC = "127.0.0.1:0"
	eastCfg.Peers = []configs.Peer{{Cluster: "west", Node: "west-1", Transport: "quic", Mode: "accept",
		PublicKeys: []ed25519.PublicKey{westKey.Public().(ed25519.PublicKey)}}}
	east, err := daemon.New(eastCfg, daemon.Options{Logger: o.Logger.With("d", "east")})
	if err != nil {
		return rep, err
	}
	if err := east.Start(ctx); err != nil {
		return rep, err
	}
	defer east.Close()
	relay, err := newCutRelay("127.0.0.1:0", east.ListenAddr("quic"))
	if err != nil {
		return rep, err
	}
	defer relay.Close()
	westCfg := nodeConfig("west", "west-1", dir)
	westCfg.Peers = []configs.Peer{{Cluster: "east", Node: "east-1", Address: relay.Addr(), Transport: "quic", Mode: "connect",
		PublicKeys: []ed25519.PublicKey{eastKey.Public().(ed25519.PublicKey)}}}
	west, err := daemon.New(westCfg, daemon.Options{Logger: o.Logger.With("d", "west")})
	if err != nil {
		return rep, err
	}
	if err := west.Start(ctx); err != nil {
		return rep, err
	}
	defer west.Close()
	say("nodes: east/east-1 listens on quic %s; west/west-1 dials it through relay %s", east.ListenAddr("quic"), relay.Addr())

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := west.WaitLink(wctx, "east", "east-1", true); err != nil {
		return rep, err
	}
	say("link:  up after %v (mutual TLS 1.3, pinned Ed25519 keys)", time.Since(t0).Round(time.Millisecond))

	subC, err := client.Connect(ctx, client.Options{Socket: westCfg.Local.Socket, Name: "demo-sub"})
	if err != nil {
		return rep, err
	}
	defer subC.Close()
	mb, err := subC.NewMailbox(ctx)
	if err != nil {
		return rep, err
	}
	if err := mb.Join(ctx, group); err != nil {
		return rep, err
	}
	if err := east.WaitMembers(wctx, group, 1); err != nil {
		return rep, err
	}
	say("group: %s joined %q; east sees the member", mb.Addr(), group)

	pubC, err := client.Connect(ctx, client.Options{Socket: eastCfg.Local.Socket, Name: "demo-pub"})
	if err != nil {
		return rep, err
	}
	defer pubC.Close()

	// The receiver counts what arrives.
	type result struct {
		seen       map[int]int
		outOfOrder int
	}
	resCh := make(chan result, 1)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	expect := o.Messages
	go func() {
		res := result{seen: map[int]int{}}
		last := -1
		for len(res.seen) < expect {
			m, err := mb.Receive(rctx)
			if err != nil {
				break
			}
			n, err := strconv.Atoi(string(m.Payload))
			if err != nil {
				continue
			}
			res.seen[n]++
			if n < last {
				res.outOfOrder++
			}
			last = max(last, n)
		}
		resCh <- res
	}()

	say("send:  publishing %d messages to %q from east; the link is cut a third of the way in for %v", o.Messages, group, o.Outage)
	cutAt, healAt := o.Messages/3, o.Messages/3+1
	interval := 2 * time.Millisecond
	for i := 0; i < o.Messages; i++ {
		if i == cutAt {
			relay.SetBlackhole(true)
			cut := time.Now()
			say("cut:   relay drops every packet (no FIN, no RST)")
			dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
			err := east.WaitLink(dctx, "west", "west-1", false)
			dcancel()
			if err != nil {
				return rep, err
			}
			rep.LinkDownAfter = time.Since(cut)
			say("down:  keepalive declared the link dead after %v; sends go on into the buffer", rep.LinkDownAfter.Round(time.Millisecond))
		}
		if i == healAt {
			// Keep sending during the outage, then heal.
			for j := 0; j < o.Messages/10 && i < o.Messages; j++ {
				if err := pubC.SendGroup(ctx, group, []byte(strconv.Itoa(i))); err != nil {
					return rep, fmt.Errorf("send %d: %w", i, err)
				}
				rep.Sent++
				i++
			}
			st := east.Status()
			say("queue: %d messages held for west/west-1 while the link is down", st.Links[0].QueuedMessages)
			select {
			case <-time.After(o.Outage - min(o.Outage, rep.LinkDownAfter)):
			case <-ctx.Done():
				return rep, ctx.Err()
			}
			relay.SetBlackhole(false)
			heal := time.Now()
			say("heal:  relay forwards again")
			uctx, ucancel := context.WithTimeout(ctx, 30*time.Second)
			err := east.WaitLink(uctx, "west", "west-1", true)
			ucancel()
			if err != nil {
				return rep, err
			}
			rep.LinkUpAfter = time.Since(heal)
			say("up:    link back after %v; unacknowledged messages are sent again", rep.LinkUpAfter.Round(time.Millisecond))
			if i >= o.Messages {
				break
			}
		}
		if err := pubC.SendGroup(ctx, group, []byte(strconv.Itoa(i))); err != nil {
			return rep, fmt.Errorf("send %d: %w", i, err)
		}
		rep.Sent++
		if i%50 == 0 {
			time.Sleep(interval * 50) // pace the stream so the cut lands mid-flow
		}
	}
	var res result
	select {
	case res = <-resCh:
	case <-time.After(30 * time.Second):
		rcancel()
		res = <-resCh
	case <-ctx.Done():
		rcancel()
		res = <-resCh
	}
	for i := 0; i < rep.Sent; i++ {
		switch c := res.seen[i]; {
		case c == 0:
			rep.Lost++
		case c > 1:
			rep.Duplicated += c - 1
		}
		if res.seen[i] > 0 {
			rep.Delivered++
		}
	}
	rep.OutOfOrder = res.outOfOrder
	rep.Reconnects = west.LinkUps("east", "east-1") - 1
	for _, l := range east.Status().Links {
		rep.Redelivered += l.Redelivered
	}
	say("")
	say("sent %d, delivered %d, lost %d, duplicated %d, out of order %d; link reconnects %d, messages redelivered %d",
		rep.Sent, rep.Delivered, rep.Lost, rep.Duplicated, rep.OutOfOrder, rep.Reconnects, rep.Redelivered)
	return rep, nil
}

func nodeConfig(cluster, node, dir string) *configs.Config {
	c := configs.Default()
	c.Cluster, c.Node = cluster, node
	c.Identity = filepath.Join(dir, node+".key")
	c.Local.Socket = filepath.Join(dir, node+".sock")
	c.Link.KeepaliveInterval = 250 * time.Millisecond
	c.Link.KeepaliveTimeout = 1500 * time.Millisecond
	c.Link.HandshakeTimeout = time.Second
	c.Link.ReconnectMax = time.Second
	return c
}
