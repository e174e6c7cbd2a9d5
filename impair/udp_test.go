package impair

import (
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer answers every datagram with itself.
func echoServer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			c.WriteToUDP(buf[:n], from)
		}
	}()
	return c
}

func TestUDPRelayForwardsCutsAndHeals(t *testing.T) {
	srv := echoServer(t)
	defer srv.Close()
	r, err := NewUDPRelay("127.0.0.1:0", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := net.Dial("udp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func() bool {
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		return err == nil && string(buf[:n]) == "ping"
	}
	if !echo() {
		t.Fatal("no echo through the relay")
	}
	r.SetBlackhole(true)
	dropped := r.Dropped.Load()
	if echo() {
		t.Fatal("an echo crossed the blackhole")
	}
	if r.Dropped.Load() == dropped {
		t.Fatal("the blackhole counted no drop")
	}
	r.SetBlackhole(false)
	if !echo() {
		t.Fatal("no echo after the heal")
	}
	r.SetDelay(50 * time.Millisecond)
	start := time.Now()
	if !echo() || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("delay not applied both ways (%v)", time.Since(start))
	}
	r.SetDelay(0)
	r.SetLoss(1)
	if echo() {
		t.Fatal("an echo crossed 100% loss")
	}
}
