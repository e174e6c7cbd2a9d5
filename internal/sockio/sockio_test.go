package sockio

import (
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// TryWrite never waits: on a socket whose buffer is full it returns 0 at
// once, and writes again once the peer has read.
func TestTryWriteNeverBlocks(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skipf("socketpair: %v", err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := conn(fds[0]), conn(fds[1])
	raw, err := a.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	total := 0
	for i := 0; ; i++ {
		n := TryWrite(raw, chunk)
		total += n
		if n == 0 {
			break
		}
		if i > 10000 {
			t.Fatalf("wrote %d bytes and the socket never filled", total)
		}
	}
	if total == 0 {
		t.Fatal("nothing written to an empty socket")
	}
	if _, err := io.ReadFull(b, make([]byte, min(total, 64<<10))); err != nil {
		t.Fatal(err)
	}
	if n := TryWrite(raw, chunk[:100]); n != 100 {
		t.Fatalf("after the peer read: wrote %d of 100 bytes", n)
	}
}
