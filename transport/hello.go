package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// TLS record header: content type, legacy version, length.
const (
	recordHeaderLen  = 5
	recordHandshake  = 0x16
	maxPlainRecord   = 1 << 14
	helloFirstByteOf = 2 // the first byte is due within HelloTimeout/helloFirstByteOf
)

// readHello reads the first TLS record of an inbound connection, which
// holds the start of the ClientHello (all of it for every client this
// project knows), under the short deadlines of Options.HelloTimeout: the
// first byte within half of it, the record within all of it. A client that
// sends nothing, or sends it a byte at a time, holds its handshake slot
// for no longer than that. It returns the bytes read, to be replayed to
// the TLS server; bytes that are not a handshake record are returned as
// they are, for TLS to refuse.
func readHello(ctx context.Context, rc net.Conn, timeout time.Duration) ([]byte, error) {
	start := time.Now()
	buf := make([]byte, recordHeaderLen, recordHeaderLen+512)
	if err := readBy(ctx, rc, buf[:1], start.Add(timeout/helloFirstByteOf)); err != nil {
		return nil, err
	}
	if buf[0] != recordHandshake {
		return buf[:1], nil
	}
	helloDue := start.Add(timeout)
	if err := readBy(ctx, rc, buf[1:], helloDue); err != nil {
		return nil, err
	}
	n := int(buf[3])<<8 | int(buf[4])
	if n > maxPlainRecord {
		return buf, nil
	}
	buf = append(buf, make([]byte, n)...)
	if err := readBy(ctx, rc, buf[recordHeaderLen:], helloDue); err != nil {
		return nil, err
	}
	return buf, rc.SetReadDeadline(time.Time{})
}

// readBy fills b from rc before the deadline, or before ctx ends (the
// caller's AfterFunc sets a past deadline then).
func readBy(ctx context.Context, rc net.Conn, b []byte, deadline time.Time) error {
	if err := rc.SetReadDeadline(deadline); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := io.ReadFull(rc, b)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return &ctxError{ctxErr: ctx.Err(), cause: err}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrHelloTimeout
	default:
		return err
	}
}

// prefixConn replays bytes already read from Conn before reading on.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
