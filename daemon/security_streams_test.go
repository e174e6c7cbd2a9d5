package daemon

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// linkStreamLimit is the transport's default MaxIncomingStreams, which the
// daemon uses (the config has no key for it yet).
const linkStreamLimit = 16

// TestStreamLimitOnLink: a pinned peer that opens more streams than
// allowed gets at most the limit accepted (its control stream and 15 data
// streams). Over QUIC it cannot open more; over TCP and mem (a yamux peer
// that ignores the backlog) the extra streams wait or are reset, and the
// resets are counted. Messages on the accepted streams are delivered, none
// from the others; the hostile link stays up and the other link goes on.
func TestStreamLimitOnLink(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, _, _, check := securedPair(t, tr, nil, nil)
		ctx := ctxT(t, 20*time.Second)
		mb, err := connect(t, east).NewMailbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		to := mb.Addr().Mailbox

		north := newNode(t, tr, "north", "north-1")
		if err := addPeerForTest(east.d, peerOf(north, tr, "", "accept")); err != nil {
			t.Fatal(err)
		}
		var trp transport.Transport
		switch tr {
		case "quic":
			trp = transport.NewQUIC(transport.Options{})
		case "tcp": // a large backlog: yamux opens without waiting for accepts
			trp = transport.NewTCP(transport.Options{MaxIncomingStreams: 1024})
		default:
			trp = transport.NewMem(transport.Options{MaxIncomingStreams: 1024})
		}
		conn := linkPeer(t, trp, tr, east, north)
		waitLink(t, east.d, "north", "north-1")

		const extra = 24
		var streams []transport.Stream
		for i := range linkStreamLimit - 1 + extra {
			octx := ctx
			if tr == "quic" && i == linkStreamLimit-1 {
				var cancel context.CancelFunc
				octx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
			}
			s, err := conn.OpenStream(octx)
			if tr == "quic" && i == linkStreamLimit-1 {
				if err == nil {
					t.Fatalf("QUIC stream %d opened beyond the limit of %d", i+2, linkStreamLimit)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("QUIC stream beyond the limit: %v, want to wait for credit", err)
				}
				break
			}
			if err != nil {
				t.Fatalf("open stream %d: %v", i, err)
			}
			defer s.Close()
			frames := wire.AppendFrame(nil, &wire.StreamInit{Kind: wire.StreamData, Lane: 0})
			frames = wire.AppendFrame(frames, &wire.Data{To: to, Payload: []byte(strconv.Itoa(i))})
			s.Write(frames) // a reset stream may fail here or not
			streams = append(streams, s)
		}

		// Exactly the accepted data streams deliver.
		seen := map[string]bool{}
		for range linkStreamLimit - 1 {
			m, err := mb.Receive(ctx)
			if err != nil {
				t.Fatalf("after %d messages: %v", len(seen), err)
			}
			if seen[string(m.Payload)] {
				t.Fatalf("message %q delivered twice", m.Payload)
			}
			seen[string(m.Payload)] = true
		}
		quiet, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if m, err := mb.Receive(quiet); err == nil {
			t.Fatalf("message %q delivered from a stream beyond the limit of %d", m.Payload, linkStreamLimit)
		}
		l := east.d.peer("north", "north-1").currentLink()
		if l == nil {
			t.Fatal("the hostile peer's link went down")
		}
		refused := l.conn.(transport.RefusedStreams).RefusedStreams()
		if tr != "quic" && refused < extra-linkStreamLimit {
			t.Fatalf("%d streams refused, want at least %d (beyond the limit and the backlog)", refused, extra-linkStreamLimit)
		}
		// The daemon counts what its own transports refuse (the in-memory
		// one of the tests is built without its options).
		if got := testutil.ToFloat64(east.d.metrics.protocolErrors.WithLabelValues("stream_refused")); tr == "tcp" && got != float64(refused) {
			t.Fatalf("wandist_protocol_errors_total{kind=stream_refused} = %v, the link refused %d", got, refused)
		}
		t.Logf("%d messages delivered, %d streams reset", len(seen), refused)

		// The accepted streams go on.
		var first transport.Stream
		for i, s := range streams {
			if seen[strconv.Itoa(i)] {
				first = s
				break
			}
		}
		if _, err := first.Write(wire.AppendFrame(nil, &wire.Data{To: to, Payload: []byte("again")})); err != nil {
			t.Fatal(err)
		}
		if m, err := mb.Receive(ctx); err != nil || string(m.Payload) != "again" {
			t.Fatalf("accepted stream after the flood: %v %q", err, m.Payload)
		}
		if ups := east.d.LinkUps("north", "north-1"); ups != 1 {
			t.Fatalf("the hostile peer's link came up %d times", ups)
		}
		check()
	})
}
