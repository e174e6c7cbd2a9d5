package transport

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wandist/wandist/internal/hostile"
)

// TestQUICInitialFloodFromOneAddress: past its rate, a source's Initial
// packets are dropped before quic-go sees them: no Retry, no connection,
// counted. Without the filter each one costs a Retry (or a connection).
func TestQUICInitialFloodFromOneAddress(t *testing.T) {
	probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_, gro := withGRO(probe, nil).(*groConn)
	probe.Close()
	if !gro {
		t.Skip("the Initial filter sits in the UDP_GRO reader, and the kernel refuses UDP_GRO")
	}
	e := newEnv(t, transportCases()[0])
	o := e.opts()
	var retries, dropped atomic.Int64
	o.OnRetry = func(net.Addr) { retries.Add(1) }
	o.OnInitialDropped = func(net.Addr) { dropped.Add(1) }
	tr := NewQUIC(o)
	ln := e.listen(tr)
	src, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 1, 200)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const packets = 2000
	start := time.Now()
	for i := range packets {
		src.WriteToUDP(hostile.QUICInitial(), ln.Addr().(*net.UDPAddr))
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // pace the flood: the socket buffer drops what it cannot hold
		}
	}
	// Whatever the socket buffer kept, at most the burst and the rate
	// over the flood's time got through to quic-go.
	client, server := e.connect(tr, ln, "")
	roundTrip(t, client, server, "a client beside the flood")
	allowed := int64(initialBurst + initialRate*time.Since(start).Seconds() + 1)
	t.Logf("%d Initials dropped, %d Retries", dropped.Load(), retries.Load())
	if dropped.Load() == 0 || retries.Load() > allowed {
		t.Fatalf("%d Initials dropped and %d Retries of %d sent: more than %d reached quic-go", dropped.Load(), retries.Load(), packets, allowed)
	}
}
