package transport

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

func notSentLowatOf(t *testing.T, c net.Conn) int {
	t.Helper()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		t.Fatalf("not a TCP socket: %T", c)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// Both ends of a TCP link bound what their sockets hold unsent, so that a
// high-priority frame does not queue behind megabytes of bulk in the kernel.
func TestTCPLinkBoundsUnsentBytes(t *testing.T) {
	var tc transportCase
	for _, c := range transportCases() {
		if c.name == "tcp" {
			tc = c
		}
	}
	dialed, accepted := newEnv(t, tc).pair(Options{})
	defer dialed.Close()
	defer accepted.Close()
	for name, c := range map[string]Conn{"dialled": dialed, "accepted": accepted} {
		mc, ok := c.(*muxConn)
		if !ok {
			t.Fatalf("%s: %T, want *muxConn", name, c)
		}
		if got := notSentLowatOf(t, mc.raw.raw); got != notSentLowat {
			t.Errorf("%s end: TCP_NOTSENT_LOWAT %d, want %d", name, got, notSentLowat)
		}
	}
}
