package daemon

import (
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/impair"
)

// blackholeRelay is a relay that can go silent: impair's UDP relay (QUIC)
// or TCP relay, which drop every byte both ways while blackholed and close
// nothing.
type blackholeRelay interface {
	Addr() string
	SetBlackhole(on bool)
	Close() error
	// Target is the address the relay forwards to.
	Target() string
}

type udpHole struct {
	*impair.UDPRelay
	target string
}

func (u udpHole) Target() string { return u.target }

type tcpHole struct {
	*impair.TCPRelay
	target string
}

func (r tcpHole) Target() string { return r.target }

// blackholePair links east (dialling, logging into logs) to west (accepting)
// over tr ("quic" or "tcp") through a relay that can blackhole the path.
func blackholePair(t *testing.T, tr string, logs *syncBuffer) (east, west *node, relay blackholeRelay) {
	t.Helper()
	east = newNode(t, tr, "east", "east-1")
	west = newNode(t, tr, "west", "west-1")
	east.opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	west.cfg.Peers = []configs.Peer{peerOf(east, tr, "", "accept")}
	west.start()
	target := west.addr(tr)
	if tr == "quic" {
		r, err := impair.NewUDPRelay("127.0.0.1:0", target)
		if err != nil {
			t.Fatal(err)
		}
		relay = udpHole{r, target}
	} else {
		r, err := impair.NewTCPRelay("127.0.0.1:0", target)
		if err != nil {
			t.Fatal(err)
		}
		relay = tcpHole{r, target}
	}
	t.Cleanup(func() { relay.Close() })
	east.cfg.Peers = []configs.Peer{peerOf(west, tr, relay.Addr(), "connect")}
	east.start()
	waitLink(t, east.d, "west", "west-1")
	return east, west, relay
}

var linkDownLine = regexp.MustCompile(`msg="link down".*cause="?([^"\n]*)`)

// waitLinkDownCause returns the cause of the first "link down" in a text
// log, waiting for it (the state changes just before the line is logged).
func waitLinkDownCause(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := linkDownLine.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"link down\" logged; the log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond) // polls a log: no event to wait on
	}
}
