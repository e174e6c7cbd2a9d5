package transport

import (
	"encoding/binary"
	"net"
	"os"
	"sync"
	"syscall"

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
// It is what makes a QUIC link's receive side cheap: one system call and
// one socket buffer entry per coalesced run instead of per 1452-byte
// packet. Over loopback a sender's GSO batch (quic-go sends with UDP_SEGMENT)
// arrives whole, so the kernel does not cut it into packets either, a cost
// otherwise charged to the sender. On a NIC, the kernel's UDP GRO
// coalesces what the card delivers.
//
// Every other method is the *net.UDPConn's: quic-go writes with GSO and
// reads ECN and packet info as before (the control messages of a
// coalesced datagram go with each of its packets).
type groConn struct {
	*net.UDPConn
	raw syscall.RawConn

	// Owned by the reading goroutine: quic-go reads from one goroutine.
	cur  *[]byte      // the coalesced datagram being handed out; nil when none
	n    int          // its length
	off  int          // bytes of it handed out
	seg  int          // its packets' size (the whole datagram when not coalesced)
	addr *net.UDPAddr // its sender
	oob  []byte       // its control messages for quic-go (UDP_GRO removed)
	flag int          // its recvmsg flags
	ctl  [256]byte    // control message space for recvmsg
}

// groBufSize holds the largest coalesced datagram: an IP packet's payload.
const groBufSize = 1 << 16

// groBufs are receive buffers, taken only while a datagram is handed out:
// an idle link holds none.
var groBufs = sync.Pool{New: func() any { b := make([]byte, groBufSize); return &b }}

// withGRO turns on UDP_GRO for c and returns the connection quic-go should
// read from: a groConn, or c itself where the kernel refuses the option.
func withGRO(c *net.UDPConn) net.PacketConn {
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
	return &groConn{UDPConn: c, raw: raw}
}

// ReadBatch fills ms with received packets, one per message, waiting for
// the first. Each message's first buffer must hold a packet (quic-go's hold
// 1452 bytes); a longer packet is cut to it and flagged MSG_TRUNC, as the
// kernel does. It implements quic-go's batchConn.
func (c *groConn) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	if c.cur == nil {
		if err := c.read(); err != nil {
			return 0, err
		}
	}
	// An empty datagram is handed out as one empty message.
	i := 0
	for ; i < len(ms) && c.cur != nil; i++ {
		size := min(c.seg, c.n-c.off)
		m := &ms[i]
		m.N = copy(m.Buffers[0], (*c.cur)[c.off:c.off+size])
		m.Flags = c.flag
		if m.N < size {
			m.Flags |= unix.MSG_TRUNC
		}
		m.NN = copy(m.OOB, c.oob)
		m.Addr = c.addr
		c.off += size
		if c.off >= c.n {
			groBufs.Put(c.cur)
			c.cur = nil
		}
	}
	return i, nil
}

// read waits for the next datagram and makes it the current one.
func (c *groConn) read() error {
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		b := groBufs.Get().(*[]byte)
		n, oobn, flags, from, err := unix.Recvmsg(int(fd), *b, c.ctl[:], 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			groBufs.Put(b)
			return false // wait until readable
		}
		if err != nil {
			groBufs.Put(b)
			rerr = &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: os.NewSyscallError("recvmsg", err)}
			return true
		}
		c.cur, c.n, c.off, c.flag = b, n, 0, flags
		c.addr = c.sender(from)
		c.seg = n // not coalesced, unless a UDP_GRO message says otherwise
		c.oob = c.oob[:0]
		c.parseControl(c.ctl[:oobn])
		if c.seg <= 0 || c.seg > n {
			c.seg = n
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return err
}

// parseControl takes the segment size out of the control messages and
// keeps the rest for quic-go.
func (c *groConn) parseControl(ctl []byte) {
	for len(ctl) > 0 {
		h, body, rest, err := unix.ParseOneSocketControlMessage(ctl)
		if err != nil {
			return
		}
		whole := ctl[:len(ctl)-len(rest)]
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
			if len(body) >= 4 {
				c.seg = int(int32(binary.NativeEndian.Uint32(body)))
			}
		} else {
			c.oob = append(c.oob, whole...)
		}
		ctl = rest
	}
}

// sender converts a recvmsg source address, reusing the last one when it
// is the same: a link's packets all come from its peer.
func (c *groConn) sender(sa unix.Sockaddr) *net.UDPAddr {
	var ip []byte
	var port int
	var zone uint32
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ip, port = a.Addr[:], a.Port
	case *unix.SockaddrInet6:
		ip, port, zone = a.Addr[:], a.Port, a.ZoneId
	default:
		return nil
	}
	if last := c.addr; last != nil && last.Port == port && string(last.IP) == string(ip) && zone == 0 && last.Zone == "" {
		return last
	}
	ua := &net.UDPAddr{IP: net.IP(append([]byte(nil), ip...)), Port: port}
	if zone != 0 {
		if ifi, err := net.InterfaceByIndex(int(zone)); err == nil {
			ua.Zone = ifi.Name
		}
	}
	return ua
}
