package impair

import (
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"
)

// fakeTUN is a packet device: tests put packets in with inject and take
// what the forwarder wrote back from out.
type fakeTUN struct {
	in     chan []byte
	out    chan []byte
	closed chan struct{}
}

func newFakeTUN() *fakeTUN {
	return &fakeTUN{in: make(chan []byte, 16), out: make(chan []byte, 16), closed: make(chan struct{})}
}

func (f *fakeTUN) Read(b []byte) (int, error) {
	select {
	case p := <-f.in:
		return copy(b, p), nil
	case <-f.closed:
		return 0, io.ErrClosedPipe
	}
}

func (f *fakeTUN) Write(b []byte) (int, error) {
	f.out <- append([]byte(nil), b...)
	return len(b), nil
}

func (f *fakeTUN) Close() error { close(f.closed); return nil }

func (f *fakeTUN) next(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-f.out:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no packet came out")
		return nil
	}
}

// udpPacket builds an IPv4 UDP packet with a correct checksum.
func udpPacket(src, dst string, payload []byte) []byte {
	b := make([]byte, 28+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 64, 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[20:], 4000)
	binary.BigEndian.PutUint16(b[22:], 5000)
	binary.BigEndian.PutUint16(b[24:], uint16(8+len(payload)))
	binary.BigEndian.PutUint16(b[26:], 1) // nonzero: fixChecksum computes it
	copy(b[28:], payload)
	fixChecksum(b)
	return b
}

// checksumOK verifies a UDP checksum the way a receiver does.
func checksumOK(b []byte) bool {
	l4 := b[20:]
	sum := uint32(0)
	for i := 12; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	sum += 17 + uint32(len(l4))
	for i := 0; i+1 < len(l4); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(l4[i:]))
	}
	if len(l4)%2 == 1 {
		sum += uint32(l4[len(l4)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum) == 0xffff
}

func TestPacketForwarderDirectionsAndFaults(t *testing.T) {
	dev := newFakeTUN()
	p := NewPacketForwarder(dev, netip.MustParsePrefix("10.213.1.0/24"))
	defer p.Close()
	east := udpPacket("10.213.1.2", "10.213.2.2", []byte("payload-east"))
	west := udpPacket("10.213.2.2", "10.213.1.2", []byte("payload-west"))
	if !checksumOK(east) {
		t.Fatal("test packet has a bad checksum")
	}

	if err := p.SetFaults(Forward, Faults{Duplicate: 1, Corrupt: 1}); err != nil {
		t.Fatal(err)
	}
	dev.in <- east
	a, b := dev.next(t), dev.next(t)
	if string(a) != string(b) {
		t.Fatal("the two copies of a duplicated packet differ")
	}
	if string(a[:28]) != string(east[:26])+string(a[26:28]) || string(a[28:]) == "payload-east" {
		t.Fatalf("corruption: headers must stay, the payload must change: %q", a[28:])
	}
	if !checksumOK(a) {
		t.Fatal("the corrupted packet's UDP checksum was not corrected")
	}

	// Backward is untouched by Forward's faults.
	dev.in <- west
	if got := dev.next(t); string(got) != string(west) {
		t.Fatal("a backward packet was changed")
	}
	if err := p.SetFaults(Backward, Faults{Loss: 1}); err != nil {
		t.Fatal(err)
	}
	dev.in <- west
	waitFor(t, "the loss to be counted", func() bool { return p.Stats(Backward).Lost == 1 })

	fs, bs := p.Stats(Forward), p.Stats(Backward)
	if fs.Packets != 1 || fs.Duplicated != 1 || fs.Corrupted != 1 || fs.Forwarded != 2 {
		t.Fatalf("forward stats %+v", fs)
	}
	if bs.Packets != 2 || bs.Lost != 1 || bs.Forwarded != 1 {
		t.Fatalf("backward stats %+v", bs)
	}

	// Anything but IPv4 passes as it is.
	dev.in <- []byte{0x60, 0, 0, 0}
	if got := dev.next(t); got[0] != 0x60 {
		t.Fatal("a non-IPv4 packet did not pass")
	}
}

func TestPacketForwarderDelayKeepsOrderWithoutJitter(t *testing.T) {
	dev := newFakeTUN()
	p := NewPacketForwarder(dev, netip.MustParsePrefix("10.213.1.0/24"))
	defer p.Close()
	if err := p.SetFaults(Both, Faults{Delay: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 10 {
		dev.in <- udpPacket("10.213.1.2", "10.213.2.2", []byte{byte(i)})
	}
	for i := range 10 {
		if got := dev.next(t); got[28] != byte(i) {
			t.Fatalf("packet %d came out as number %d", i, got[28])
		}
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("packets came out before their delay")
	}
	if s := p.Stats(Forward); s.Delayed != 10 || s.MeanDelay() < 10*time.Millisecond {
		t.Fatalf("stats %+v: want 10 delayed by about 20 ms", s)
	}
}

func TestParseIPv4RejectsBadHeaders(t *testing.T) {
	good := udpPacket("10.0.0.1", "10.0.0.2", []byte("x"))
	if _, at, ok := parseIPv4(good); !ok || at != 28 {
		t.Fatalf("good packet: ok %v, payload at %d", ok, at)
	}
	short := good[:10]
	badLen := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(badLen[2:], 9999)
	for _, b := range [][]byte{short, badLen, {0x65}} {
		if _, _, ok := parseIPv4(b); ok {
			t.Errorf("accepted a bad header % x", b)
		}
	}
}

func TestPacketForwarderCloseStops(t *testing.T) {
	dev := newFakeTUN()
	p := NewPacketForwarder(dev, netip.MustParsePrefix("10.0.0.0/8"))
	if err := p.Close(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}
