package transport

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"
)

// bytesConn is a net.Conn that reads from a fixed input; deadlines are
// accepted and ignored.
type bytesConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *bytesConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetDeadline(t time.Time) error    { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzReadHello: readHello never reads past the first record, never
// allocates more than one record, and returns a prefix of its input.
func FuzzReadHello(f *testing.F) {
	f.Add([]byte{recordHandshake, 3, 1, 0, 2, 1, 0})
	f.Add([]byte{recordHandshake, 3, 1, 0xff, 0xff})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := readHello(context.Background(), &bytesConn{r: bytes.NewReader(in)}, time.Second)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(in, got) {
			t.Fatalf("returned %x, not a prefix of the input", got)
		}
		if len(got) > recordHeaderLen+maxPlainRecord {
			t.Fatalf("read %d bytes, more than one record", len(got))
		}
	})
}
