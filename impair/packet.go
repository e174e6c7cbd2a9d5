package impair

import (
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"time"
)

// PacketForwarder impairs IP packets: it reads each packet from a device
// (a TUN device: one Read is one packet), applies the faults of the
// packet's direction, and writes it back to the device, whose kernel then
// routes it on. A router namespace that sends its traffic through the TUN
// device thus impairs every protocol at the packet level, as netem does.
// Forward is a packet whose IPv4 source is in the forward prefix; every
// other packet is Backward. Packets other than IPv4 pass unimpaired.
type PacketForwarder struct {
	dev     io.ReadWriteCloser
	forward netip.Prefix
	faults  pathFaults
	lines   [2]*delayLine

	done chan struct{}
	err  error // why the read loop ended; read after done
}

// packetQueueLimit bounds the bytes one direction holds for later.
const packetQueueLimit = 32 << 20

// NewPacketForwarder starts forwarding the packets of dev. Close stops it
// and closes dev.
func NewPacketForwarder(dev io.ReadWriteCloser, forward netip.Prefix) *PacketForwarder {
	p := &PacketForwarder{dev: dev, forward: forward.Masked(), faults: newPathFaults(),
		lines: [2]*delayLine{newDelayLine(packetQueueLimit), newDelayLine(packetQueueLimit)}, done: make(chan struct{})}
	go p.run()
	return p
}

// SetFaults sets the faults of dir (Forward, Backward or Both).
func (p *PacketForwarder) SetFaults(dir Direction, f Faults) error { return p.faults.set(dir, f) }

// Stats returns what dir did so far (Both: the sum).
func (p *PacketForwarder) Stats(dir Direction) Stats { return p.faults.stats(dir) }

// Done is closed when the forwarder stopped (Close, or the device failed).
func (p *PacketForwarder) Done() <-chan struct{} { return p.done }

func (p *PacketForwarder) run() {
	defer close(p.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := p.dev.Read(buf)
		if err != nil {
			p.err = err
			return
		}
		p.handle(buf[:n])
	}
}

func (p *PacketForwarder) write(b []byte) {
	_, _ = p.dev.Write(b)
}

func (p *PacketForwarder) handle(b []byte) {
	src, payloadAt, ok := parseIPv4(b)
	if !ok {
		p.write(b)
		return
	}
	dir := Backward
	if p.forward.Contains(src) {
		dir = Forward
	}
	sh := p.faults.shaper(dir)
	v := sh.admit(time.Now(), len(b), false, payloadAt > 0 && payloadAt < len(b))
	if v.copies == 0 {
		return
	}
	pkt := append([]byte(nil), b...)
	if v.corrupt {
		corrupt(pkt, payloadAt)
		fixChecksum(pkt)
	}
	line := p.lines[0]
	if dir == Backward {
		line = p.lines[1]
	}
	out := func(b []byte) {
		p.write(b)
		sh.c.forwarded.Add(1)
	}
	for i := range v.copies {
		c := pkt
		if i > 0 {
			c = append([]byte(nil), pkt...)
		}
		if !line.push(v.at, c, out, false) {
			sh.c.queueDrops.Add(1)
		}
	}
}

// Close stops the forwarder and closes the device.
func (p *PacketForwarder) Close() error {
	err := p.dev.Close()
	<-p.done
	for _, l := range p.lines {
		l.close()
	}
	if errors.Is(err, io.ErrClosedPipe) {
		err = nil
	}
	return err
}

// parseIPv4 returns an IPv4 packet's source address and the offset of its
// UDP or TCP payload (0 for other protocols, or when the header does not
// fit); ok is false for anything but a well-formed IPv4 header.
func parseIPv4(b []byte) (src netip.Addr, payloadAt int, ok bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return netip.Addr{}, 0, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || total > len(b) {
		return netip.Addr{}, 0, false
	}
	src = netip.AddrFrom4([4]byte(b[12:16]))
	if frag := binary.BigEndian.Uint16(b[6:8]) & 0x3fff; frag != 0 {
		return src, 0, true // a fragment: its L4 header is elsewhere
	}
	l4 := b[ihl:total]
	switch b[9] {
	case 6: // TCP
		if len(l4) < 20 {
			return src, 0, true
		}
		off := int(l4[12]>>4) * 4
		if off < 20 || off > len(l4) {
			return src, 0, true
		}
		return src, ihl + off, true
	case 17: // UDP
		if len(l4) < 8 {
			return src, 0, true
		}
		return src, ihl + 8, true
	}
	return src, 0, true
}

// fixChecksum recomputes the UDP or TCP checksum of a well-formed IPv4
// packet after its payload changed (a UDP checksum of 0, none, stays 0).
func fixChecksum(b []byte) {
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	l4 := b[ihl:total]
	var at int
	switch b[9] {
	case 6:
		at = 16
	case 17:
		at = 6
		if binary.BigEndian.Uint16(l4[at:]) == 0 {
			return
		}
	default:
		return
	}
	l4[at], l4[at+1] = 0, 0
	sum := uint32(0)
	add := func(d []byte) {
		for len(d) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(d))
			d = d[2:]
		}
		if len(d) == 1 {
			sum += uint32(d[0]) << 8
		}
	}
	add(b[12:20]) // source and destination
	sum += uint32(b[9]) + uint32(len(l4))
	add(l4)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	cs := ^uint16(sum)
	if cs == 0 && b[9] == 17 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(l4[at:], cs)
}
