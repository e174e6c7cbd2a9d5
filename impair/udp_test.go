package impair

import (
	"errors"
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

// udpPair is a client socket talking to an echo server through a relay.
func udpPair(t *testing.T) (*UDPRelay, net.Conn) {
	t.Helper()
	srv := echoServer(t)
	t.Cleanup(func() { srv.Close() })
	r, err := NewUDPRelay("127.0.0.1:0", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c, err := net.Dial("udp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return r, c
}

// readAll reads datagrams until none arrives for quiet.
func readAll(c net.Conn, quiet time.Duration) []string {
	var got []string
	buf := make([]byte, 2048)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.Read(buf)
		if err != nil {
			return got
		}
		got = append(got, string(buf[:n]))
	}
}

func TestUDPRelayDuplicatesAndCorrupts(t *testing.T) {
	r, c := udpPair(t)
	if err := r.SetFaults(Forward, Faults{Duplicate: 1}); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("dup"))
	if got := readAll(c, 300*time.Millisecond); len(got) != 2 || got[0] != "dup" || got[1] != "dup" {
		t.Fatalf("a duplicated datagram echoed as %q, want it twice", got)
	}
	if s := r.Stats(Forward); s.Duplicated != 1 || s.Forwarded != 2 || s.Packets != 1 {
		t.Fatalf("forward stats after one duplicate: %+v", s)
	}
	if err := r.SetFaults(Forward, Faults{Corrupt: 1}); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("intact"))
	got := readAll(c, 300*time.Millisecond)
	if len(got) != 1 || got[0] == "intact" || len(got[0]) != len("intact") {
		t.Fatalf("a corrupted datagram echoed as %q, want one changed byte", got)
	}
	if s := r.Stats(Both); s.Corrupted != 1 {
		t.Fatalf("corrupted count %d, want 1", s.Corrupted)
	}
}

func TestUDPRelayReordersAndCounts(t *testing.T) {
	r, c := udpPair(t)
	if err := r.SetFaults(Forward, Faults{Reorder: 1, ReorderGap: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("first"))
	waitFor(t, "the relay to take the first datagram", func() bool { return r.Stats(Forward).Packets == 1 })
	if err := r.SetFaults(Forward, Faults{}); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("second"))
	got := readAll(c, time.Second)
	if len(got) != 2 || got[0] != "second" || got[1] != "first" {
		t.Fatalf("echoes %q, want the held-back first datagram after the second", got)
	}
	if s := r.Stats(Forward); s.Reordered != 1 || s.Delayed != 1 {
		t.Fatalf("forward stats: %+v, want one reordered and delayed", s)
	}
	if err := r.SetFaults(Both, Faults{Loss: 1}); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("lost"))
	if got := readAll(c, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("echoes %q crossed 100%% loss", got)
	}
	if s := r.Stats(Forward); s.Lost != 1 {
		t.Fatalf("lost count %d, want 1", s.Lost)
	}
}

func TestUDPRelayRateCapQueuesAndDrops(t *testing.T) {
	r, c := udpPair(t)
	// 8 kbit/s: a 100-byte datagram takes 100 ms; the queue holds 150 ms.
	if err := r.SetFaults(Forward, Faults{Rate: 8000, QueueLimit: 150 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 100)
	for range 5 {
		c.Write(payload)
	}
	got := readAll(c, 500*time.Millisecond)
	s := r.Stats(Forward)
	if s.Packets != 5 || s.QueueDrops == 0 || s.RateLimited == 0 || uint64(len(got)) != s.Forwarded {
		t.Fatalf("rate cap: %d echoes, stats %+v; want some queued and some tail-dropped", len(got), s)
	}
	if s.Forwarded+s.QueueDrops != 5 {
		t.Fatalf("forwarded %d + dropped %d != 5", s.Forwarded, s.QueueDrops)
	}
}

func TestFaultsValidate(t *testing.T) {
	bad := []Faults{{Loss: 1.5}, {Corrupt: -0.1}, {Delay: -time.Second}, {Rate: -1}}
	for _, f := range bad {
		if err := f.Validate(); !errors.Is(err, ErrBadFaults) {
			t.Errorf("%+v: error %v, want ErrBadFaults", f, err)
		}
	}
	r, _ := udpPair(t)
	if err := r.SetFaults(Both, Faults{Duplicate: 2}); !errors.Is(err, ErrBadFaults) {
		t.Fatalf("SetFaults accepted Duplicate 2: %v", err)
	}
	if err := r.SetFaults(0, Faults{}); !errors.Is(err, ErrBadFaults) {
		t.Fatalf("SetFaults accepted direction 0: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
