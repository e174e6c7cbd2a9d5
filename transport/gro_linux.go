package transport

import (
	"encoding/binary"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// groConn is a QUIC link's UDP socket with receive offload (UDP_GRO) on:
// the kernel hands over a run of same-sized datagrams from one sender as
// one coalesced datagram, and ReadBatch splits it back into packets for
// quic-go, which reads through ReadBatch when its connection has one (its
// batchConn) and does not parse coalesced datagrams itself
// (quic-go/quic-go#3838).
//
// It is what makes a QUIC link's receive side cheap: one socket buffer
// entry and one copy out of the kernel per coalesced run instead of per
// 1452-byte packet. Over loopback a sender's GSO batch (quic-go sends with
// UDP_SEGMENT) arrives whole, so the kernel does not cut it into packets
// either, a cost otherwise charged to the sender. On a NIC, the kernel's
// UDP GRO coalesces what the card delivers. Like quic-go's own reader, it
// takes up to groBatch datagrams per system call (recvmmsg), so traffic
// that is not coalesced costs no more system calls than before.
//
// Every other method is the *net.UDPConn's: quic-go writes with GSO and
// reads ECN and packet info as before (the control messages of a
// coalesced datagram go with each of its packets).
type groConn struct {
	*net.UDPConn
	raw syscall.RawConn

	// Owned by the reading goroutine: quic-go reads from one goroutine.
	slots    [groBatch]groSlot      // the datagrams of the last read
	hdrs     [groBatch]unix.Mmsghdr // recvmmsg's headers, pointing into slots
	iovs     [groBatch]unix.Iovec
	initials *initialFilter // listeners only: drops floods of Initials; nil for dialers
	n        int            // datagrams the last read took
	next     int            // slots[next] is being handed out; all before it are
	off      int            // bytes of slots[next] handed out
	last     *net.UDPAddr
}

// groSlot is one received datagram.
type groSlot struct {
	buf   *[]byte // from groBufs; nil once handed out
	len   int
	seg   int // its packets' size (len when not coalesced)
	flags int
	addr  *net.UDPAddr
	oob   []byte // its control messages for quic-go: ctl without UDP_GRO
	name  unix.RawSockaddrAny
	ctl   [groCtlSize]byte
}

const (
	// groBatch is the most datagrams one read takes, as quic-go's reader.
	groBatch = 8
	// groBufSize holds the largest coalesced datagram: an IP payload.
	groBufSize = 1 << 16
	// groCtlSize holds the control messages a QUIC socket gets: TOS or
	// traffic class, packet info and the UDP_GRO segment size.
	groCtlSize = 128
)

// groBufs are receive buffers, held only while their datagram is being
// handed out: an idle link holds none.
var groBufs = sync.Pool{New: func() any { b := make([]byte, groBufSize); return &b }}

// withGRO turns on UDP_GRO for c and returns the connection quic-go should
// read from: a groConn, or c itself where the kernel refuses the option.
// A listener's (initials not nil) also drops floods of Initial packets.
func withGRO(c *net.UDPConn, initials *initialFilter) net.PacketConn {
	raw, err := c.SyscallConn()
	if err != nil {
		return c
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1)
	}); err != nil || serr != nil {
		return c
	}
	return &groConn{UDPConn: c, raw: raw, initials: initials}
}

// ReadBatch fills ms with received packets, one per message, waiting for
// the first. Each message's first buffer must hold a packet (quic-go's hold
// 1452 bytes); a longer packet is cut to it and flagged MSG_TRUNC, as the
// kernel does. An empty datagram is handed out as an empty message. It
// implements quic-go's batchConn.
func (c *groConn) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	for {
		if c.next >= c.n {
			if err := c.read(len(ms)); err != nil {
				return 0, err
			}
		}
		if i := c.handOut(ms); i > 0 {
			return i, nil
		}
		// All dropped (Initials over their rate): wait for more.
	}
}

// handOut fills ms from the slots read and says how many it filled.
func (c *groConn) handOut(ms []ipv4.Message) int {
	i := 0
	now := time.Now()
	for i < len(ms) && c.next < c.n {
		s := &c.slots[c.next]
		size := min(s.seg, s.len-c.off)
		if c.initials != nil && c.initials.drop((*s.buf)[c.off:c.off+size], s.addr, now) {
			c.advance(size)
			continue
		}
		m := &ms[i]
		i++
		m.N = copy(m.Buffers[0], (*s.buf)[c.off:c.off+size])
		m.Flags = s.flags
		if m.N < size {
			m.Flags |= unix.MSG_TRUNC
		}
		m.NN = copy(m.OOB, s.oob)
		m.Addr = s.addr
		c.advance(size)
	}
	return i
}

// advance moves past size bytes of the datagram being handed out.
func (c *groConn) advance(size int) {
	s := &c.slots[c.next]
	c.off += size
	if c.off >= s.len {
		groBufs.Put(s.buf)
		s.buf = nil
		c.next++
		c.off = 0
	}
}

// read waits until datagrams arrive and takes up to want of them (at most
// groBatch) into the slots.
func (c *groConn) read(want int) error {
	k := max(1, min(want, groBatch))
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		for i := range k {
			s := &c.slots[i]
			if s.buf == nil {
				s.buf = groBufs.Get().(*[]byte)
			}
			c.iovs[i].Base = &(*s.buf)[0]
			c.iovs[i].SetLen(groBufSize)
			h := &c.hdrs[i]
			h.Len = 0
			h.Hdr = unix.Msghdr{
				Name:    (*byte)(unsafe.Pointer(&s.name)),
				Namelen: uint32(unsafe.Sizeof(s.name)),
				Iov:     &c.iovs[i],
				Control: &s.ctl[0],
			}
			h.Hdr.SetIovlen(1)
			h.Hdr.SetControllen(len(s.ctl))
		}
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.hdrs[0])), uintptr(k), 0, 0, 0)
		for errno == unix.EINTR {
			r, _, errno = unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.hdrs[0])), uintptr(k), 0, 0, 0)
		}
		// The headers must not keep the buffers reachable once they are
		// back in the pool: an idle socket would pin them.
		for i := range k {
			c.iovs[i].Base = nil
		}
		if errno == unix.EAGAIN {
			c.release(0, k) // an idle socket holds no buffer
			return false    // wait until readable
		}
		if errno != 0 {
			c.release(0, k)
			rerr = &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: os.NewSyscallError("recvmmsg", errno)}
			return true
		}
		n := int(r)
		c.release(n, k)
		for i := range n {
			c.take(i)
		}
		c.n, c.next, c.off = n, 0, 0
		return true
	})
	if err == nil {
		err = rerr
	}
	return err
}

// release returns the buffers of slots from to to to the pool.
func (c *groConn) release(from, to int) {
	for i := from; i < to; i++ {
		if s := &c.slots[i]; s.buf != nil {
			groBufs.Put(s.buf)
			s.buf = nil
		}
	}
}

// take fills slot i from what recvmmsg wrote into its header.
func (c *groConn) take(i int) {
	s, h := &c.slots[i], &c.hdrs[i]
	s.len = int(h.Len)
	s.flags = int(h.Hdr.Flags)
	s.seg = s.len // not coalesced, unless a UDP_GRO message says otherwise
	s.oob = s.ctl[:0]
	ctl := s.ctl[:min(int(h.Hdr.Controllen), len(s.ctl))]
	for len(ctl) > 0 {
		cm, body, rest, err := unix.ParseOneSocketControlMessage(ctl)
		if err != nil {
			break
		}
		whole := ctl[:len(ctl)-len(rest)]
		if cm.Level == unix.SOL_UDP && cm.Type == unix.UDP_GRO {
			if len(body) >= 4 {
				s.seg = int(int32(binary.NativeEndian.Uint32(body)))
			}
		} else {
			// Compact in place: s.oob never runs ahead of ctl.
			s.oob = append(s.oob, whole...)
		}
		ctl = rest
	}
	if s.seg <= 0 || s.seg > s.len {
		s.seg = s.len
	}
	s.addr = c.sender(&s.name)
}

// sender converts a datagram's source address, reusing the last one when
// it is the same: a link's packets all come from its peer.
func (c *groConn) sender(rsa *unix.RawSockaddrAny) *net.UDPAddr {
	var ip []byte
	var port int
	var zone uint32
	switch rsa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		ip, port = a.Addr[:], int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&a.Port))[:]))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		ip, port, zone = a.Addr[:], int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&a.Port))[:])), a.Scope_id
	default:
		return nil
	}
	if l := c.last; l != nil && l.Port == port && string(l.IP) == string(ip) && zone == 0 && l.Zone == "" {
		return l
	}
	ua := &net.UDPAddr{IP: net.IP(append([]byte(nil), ip...)), Port: port}
	if zone != 0 {
		if ifi, err := net.InterfaceByIndex(int(zone)); err == nil {
			ua.Zone = ifi.Name
		}
	}
	c.last = ua
	return ua
}
