package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// groPair returns a receiving groConn and a plain sending socket on IPv4
// loopback.
func groPair(t *testing.T) (*groConn, *net.UDPConn) {
	t.Helper()
	return groPairOn(t, "udp4", net.IPv4(127, 0, 0, 1))
}

// groPairOn is groPair on network at ip.
func groPairOn(t *testing.T, network string, ip net.IP) (*groConn, *net.UDPConn) {
	t.Helper()
	rc, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	t.Cleanup(func() { rc.Close() })
	g, ok := withGRO(rc, nil).(*groConn)
	if !ok {
		t.Skip("the kernel refuses UDP_GRO")
	}
	sc, err := net.DialUDP(network, nil, rc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return g, sc
}

// sendSegmented sends b as one GSO datagram cut into size-byte packets.
func sendSegmented(t *testing.T, c *net.UDPConn, b []byte, size int) {
	t.Helper()
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
	if _, _, err := c.WriteMsgUDP(b, oob, nil); err != nil {
		t.Fatalf("GSO send: %v", err)
	}
}

// messages are n receive messages with quic-go's buffer sizes.
func messages(n, bufSize int) []ipv4.Message {
	ms := make([]ipv4.Message, n)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, bufSize)}
		ms[i].OOB = make([]byte, 128)
	}
	return ms
}

// readAll reads from g until want packets came, in batches of batch.
func readAll(t *testing.T, g *groConn, want, batch, bufSize int) (pkts [][]byte, ms []ipv4.Message) {
	t.Helper()
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(pkts) < want {
		m := messages(batch, bufSize)
		n, err := g.ReadBatch(m, 0)
		if err != nil {
			t.Fatalf("after %d packets: %v", len(pkts), err)
		}
		if n == 0 || n > batch {
			t.Fatalf("ReadBatch returned %d messages for %d places", n, batch)
		}
		for _, x := range m[:n] {
			pkts = append(pkts, append([]byte(nil), x.Buffers[0][:x.N]...))
			ms = append(ms, x)
		}
	}
	return pkts, ms
}

func TestGROSplitsACoalescedDatagramIntoItsPackets(t *testing.T) {
	for _, tc := range []struct {
		network string
		ip      net.IP
	}{{"udp4", net.IPv4(127, 0, 0, 1)}, {"udp6", net.IPv6loopback}} {
		t.Run(tc.network, func(t *testing.T) { testGROSplit(t, tc.network, tc.ip) })
	}
}

func testGROSplit(t *testing.T, network string, ip net.IP) {
	g, sc := groPairOn(t, network, ip)
	// Five 1000-byte packets and a 300-byte last one, sent as one.
	var all []byte
	for i := range 6 {
		size := 1000
		if i == 5 {
			size = 300
		}
		all = append(all, bytes.Repeat([]byte{byte('a' + i)}, size)...)
	}
	sendSegmented(t, sc, all, 1000)
	first := messages(4, 1452)
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := g.ReadBatch(first, 0); err != nil || n != 4 {
		t.Fatalf("first ReadBatch: %d messages, %v; want 4", n, err)
	}
	if g.n != 1 || g.next != 0 || g.slots[0].buf == nil || g.slots[0].seg != 1000 || g.off != 4000 {
		t.Fatalf("after 4 of 6 packets: %d datagrams read, at %d, held %v, segment size %d, offset %d; want one coalesced datagram held at 4000 with 1000-byte packets",
			g.n, g.next, g.slots[0].buf != nil, g.slots[0].seg, g.off)
	}
	var pkts [][]byte
	var ms []ipv4.Message
	for _, m := range first {
		pkts = append(pkts, append([]byte(nil), m.Buffers[0][:m.N]...))
		ms = append(ms, m)
	}
	rest, restMs := readAll(t, g, 2, 4, 1452)
	pkts, ms = append(pkts, rest...), append(ms, restMs...)
	if len(pkts) != 6 {
		t.Fatalf("got %d packets, want 6", len(pkts))
	}
	for i, p := range pkts {
		size := 1000
		if i == 5 {
			size = 300
		}
		if !bytes.Equal(p, bytes.Repeat([]byte{byte('a' + i)}, size)) {
			t.Errorf("packet %d: %d bytes starting %q, want %d bytes of %q", i, len(p), p[:min(1, len(p))], size, rune('a'+i))
		}
		m := ms[i]
		if a, ok := m.Addr.(*net.UDPAddr); !ok || !a.IP.Equal(ip) || a.Port != sc.LocalAddr().(*net.UDPAddr).Port {
			t.Errorf("packet %d from %v, want the sender %v", i, m.Addr, sc.LocalAddr())
		}
		for ctl := m.OOB[:m.NN]; len(ctl) > 0; {
			h, _, rest, err := unix.ParseOneSocketControlMessage(ctl)
			if err != nil {
				t.Fatalf("packet %d: control messages do not parse: %v", i, err)
			}
			if h.Level == unix.SOL_UDP {
				t.Errorf("packet %d still carries the UDP_GRO control message", i)
			}
			ctl = rest
		}
	}
	assertNoBufferHeld(t, g)
}

func TestGROPlainEmptyAndOversizedDatagrams(t *testing.T) {
	g, sc := groPair(t)
	for _, b := range [][]byte{[]byte("plain"), {}, bytes.Repeat([]byte{'x'}, 2000)} {
		if _, err := sc.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	pkts, ms := readAll(t, g, 3, 8, 1452)
	if string(pkts[0]) != "plain" || ms[0].Flags&unix.MSG_TRUNC != 0 {
		t.Errorf("plain datagram: %q flags %#x", pkts[0], ms[0].Flags)
	}
	if len(pkts[1]) != 0 {
		t.Errorf("empty datagram handed out as %d bytes", len(pkts[1]))
	}
	if len(pkts[2]) != 1452 || ms[2].Flags&unix.MSG_TRUNC == 0 {
		t.Errorf("a 2000-byte datagram into a 1452-byte buffer: %d bytes, flags %#x; want 1452 and MSG_TRUNC", len(pkts[2]), ms[2].Flags)
	}
}

func TestGROReadDeadlineAndClose(t *testing.T) {
	g, _ := groPair(t)
	g.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := g.ReadBatch(messages(1, 1452), 0)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadBatch past its deadline: %v, want a timeout net.Error", err)
	}
	g.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := g.ReadBatch(messages(1, 1452), 0)
		done <- err
	}()
	g.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a blocked ReadBatch")
	}
}

func TestGROReportsICMPErrors(t *testing.T) {
	// A dial's socket reports port unreachable (IP_RECVERR) so that a dial
	// to a closed port fails at once; the error must come through.
	closed, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	raddr := closed.LocalAddr().(*net.UDPAddr)
	closed.Close()
	uc, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	setRecvErr(uc, raddr, true)
	g, ok := withGRO(uc, nil).(*groConn)
	if !ok {
		t.Skip("the kernel refuses UDP_GRO")
	}
	if _, err := uc.WriteToUDP([]byte("hello"), raddr); err != nil {
		t.Fatal(err)
	}
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = g.ReadBatch(messages(1, 1452), 0)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("ReadBatch after sending to a closed port: %v, want ECONNREFUSED", err)
	}
	// quic-go keeps reading past an error that says it is temporary.
	var ne net.Error
	//lint:ignore SA1019 quic-go's read loop decides by Temporary
	if errors.As(err, &ne) && ne.Temporary() {
		t.Error("ECONNREFUSED reported as temporary: quic-go would keep waiting instead of failing the dial")
	}
}

// assertNoBufferHeld fails if g still holds or points at a receive buffer
// after everything it read was handed out.
func assertNoBufferHeld(t *testing.T, g *groConn) {
	t.Helper()
	for i := range g.slots {
		if g.slots[i].buf != nil {
			t.Errorf("slot %d still holds its receive buffer after every packet was handed out", i)
		}
		if g.iovs[i].Base != nil {
			t.Errorf("recvmmsg header %d still points at a receive buffer: an idle socket would keep it from the collector", i)
		}
	}
}

func TestGROReadsQueuedDatagramsInOneCall(t *testing.T) {
	// Datagrams that are not coalesced (another sender's, or a card's
	// without GRO) are taken several per system call, as quic-go does.
	g, _ := groPair(t)
	senders := make([]*net.UDPConn, 5)
	for i := range senders {
		c, err := net.DialUDP("udp4", nil, g.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		senders[i] = c
	}
	// Loopback queues a datagram at the receiver before the send returns,
	// so all five wait when the read starts; try a few rounds in case the
	// kernel was slower once.
	for round := 0; round < 5; round++ {
		for i, c := range senders {
			if _, err := c.Write([]byte{byte('0' + i)}); err != nil {
				t.Fatal(err)
			}
		}
		pkts, ms := readAll(t, g, len(senders), 8, 1452)
		for i, p := range pkts {
			if string(p) != string(rune('0'+i)) {
				t.Fatalf("round %d: packet %d is %q, want %q", round, i, p, rune('0'+i))
			}
			if a := ms[i].Addr.(*net.UDPAddr); a.Port != senders[i].LocalAddr().(*net.UDPAddr).Port {
				t.Fatalf("round %d: packet %d from port %d, want its sender's %d", round, i, a.Port, senders[i].LocalAddr().(*net.UDPAddr).Port)
			}
		}
		assertNoBufferHeld(t, g)
		if g.n == len(senders) {
			return // one recvmmsg took all five
		}
		t.Logf("round %d: the last read took %d of %d datagrams", round, g.n, len(senders))
	}
	t.Fatal("five queued datagrams never came in one read")
}
