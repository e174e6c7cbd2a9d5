package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
)

// benchStream sends b.N messages of size bytes from a client of east to a
// mailbox on west and waits until all arrived; it reports delivered msgs/s.
func benchStream(b *testing.B, east, west *node, size int, opts []client.SendOption, during func()) {
	mb := subscribe(b, west, "bench", east)
	pub, err := client.Connect(context.Background(), client.Options{Socket: east.cfg.Local.Socket})
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	payload := bytes.Repeat([]byte("x"), size)
	done := make(chan int)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var received atomic.Int64
	go func() {
		n := 0
		for ; n < b.N; n++ {
			if _, err := mb.Receive(ctx); err != nil {
				break
			}
			received.Add(1)
		}
		done <- n
	}()
	stop := make(chan struct{})
	if during != nil {
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					during()
				}
			}
		}()
	}
	// A sender keeps at most window messages (16 MiB) in flight (sent, not
	// yet received): past the buffer's bound a send would be refused
	// (ErrBusy) instead of waiting, by design.
	window := int64(min(200_000, (16<<20)/max(size, 1))) // messages, within the SDK (32 MiB) and daemon (64 MiB) buffers
	for i := 0; i < b.N; i++ {
		for int64(i)-received.Load() > window {
			time.Sleep(50 * time.Microsecond)
		}
		if err := pub.SendAsync(client.Target{Group: "bench"}, payload, opts...); err != nil {
			b.Fatal(err)
		}
		if i%8192 == 8191 {
			if err := pub.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := pub.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	got := <-done
	close(stop)
	el := time.Since(start)
	if got != b.N {
		b.Fatalf("delivered %d of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N*size)/el.Seconds()/1e6, "MB/s")
}

func benchPair(b *testing.B, tr string, spool bool) (*node, *node) {
	t := b
	east := newNode(t, tr, "east", "east-1")
	west := newNode(t, tr, "west", "west-1")
	if spool {
		east.cfg.Spool.Dir = filepath.Join(b.TempDir(), "e")
		west.cfg.Spool.Dir = filepath.Join(b.TempDir(), "w")
	}
	east.cfg.Peers = []configs.Peer{peerOf(west, tr, "", "accept")}
	east.start()
	west.cfg.Peers = []configs.Peer{peerOf(east, tr, east.addr(tr), "connect")}
	west.start()
	waitLink(t, west.d, "east", "east-1")
	return east, west
}

// BenchmarkReliable: one-way reliable throughput, 128-byte payloads.
func BenchmarkReliable(b *testing.B) {
	for _, tr := range []string{"quic", "tcp"} {
		b.Run(tr, func(b *testing.B) {
			east, west := benchPair(b, tr, false)
			benchStream(b, east, west, 128, nil, nil)
		})
	}
}

// BenchmarkAtMostOnce: the same without retransmission.
func BenchmarkAtMostOnce(b *testing.B) {
	for _, tr := range []string{"quic", "tcp"} {
		b.Run(tr, func(b *testing.B) {
			east, west := benchPair(b, tr, false)
			benchStream(b, east, west, 128, []client.SendOption{client.WithMode(client.AtMostOnce)}, nil)
		})
	}
}

// BenchmarkReliableWithCuts: reliable throughput with the link cut every 200ms.
func BenchmarkReliableWithCuts(b *testing.B) {
	for _, tr := range []string{"quic", "tcp"} {
		b.Run(tr, func(b *testing.B) {
			east, west := benchPair(b, tr, false)
			benchStream(b, east, west, 128, nil, func() { east.d.DropLink("west", "west-1") })
		})
	}
}

// BenchmarkDurable: durable throughput (spools on both sides, group-committed
// fsync), one client pipelining its sends.
func BenchmarkDurable(b *testing.B) {
	east, west := benchPair(b, "quic", true)
	benchStream(b, east, west, 128, []client.SendOption{client.WithMode(client.Durable)}, nil)
}

// BenchmarkHighPriorityBehindBacklog measures the latency of high-priority
// messages sent over a link while a 1 GiB normal backlog drains over it, and
// reports its p50 and p99.
func BenchmarkHighPriorityBehindBacklog(b *testing.B) {
	t := b
	east, west, relay := relayedPair(t)
	mb := subscribe(t, west, "g", east)
	ctx := context.Background()
	backlogMiB := 1024
	if v, err := strconv.Atoi(os.Getenv("WANDIST_BACKLOG_MIB")); err == nil && v > 0 {
		backlogMiB = v
	}
	// The default 64 MiB buffer bounds the backlog: restart east with room.
	east.d.Close()
	east.cfg.Peers[0].Buffer.MaxBytes = int64(backlogMiB+64) << 20
	east.start()
	waitLink(t, east.d, "west", "west-1")
	pub := connect(t, east)
	relay.SetBlackhole(true)
	_ = east.d.WaitLink(ctx, "west", "west-1", false)
	big := bytes.Repeat([]byte("n"), 64<<10)
	for i := 0; i < backlogMiB*16; i++ {
		if err := pub.SendAsync(client.Target{Addr: mb.Addr()}, big); err != nil {
			b.Fatal(err)
		}
		if i%256 == 255 { // the SDK holds at most 32 MiB unread by the daemon
			if err := pub.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	// The high-priority messages go to another consumer on west (its own
	// client): what is measured is the WAN path's lanes, not a shared inbox.
	hmb := subscribe(t, west, "h")
	relay.SetBlackhole(false)
	// Measure from the moment the link is back and the backlog flows.
	if err := east.d.WaitLink(ctx, "west", "west-1", true); err != nil {
		b.Fatal(err)
	}
	go func() { // drain the backlog's consumer
		for {
			if _, err := mb.Receive(ctx); err != nil {
				return
			}
		}
	}()
	lat := make(chan time.Duration, b.N)
	go func() {
		for n := 0; n < b.N; {
			m, err := hmb.Receive(ctx)
			if err != nil {
				return
			}
			if bytes.HasPrefix(m.Payload, []byte("H")) {
				ns, _ := strconv.ParseInt(string(m.Payload[1:]), 10, 64)
				lat <- time.Duration(time.Now().UnixNano() - ns)
				n++
			}
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := []byte("H" + strconv.FormatInt(time.Now().UnixNano(), 10))
		if err := pub.SendAsync(client.Target{Addr: hmb.Addr()}, p, client.WithHighPriority()); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	var ls []time.Duration
	for range b.N {
		ls = append(ls, <-lat)
	}
	slices.Sort(ls)
	b.ReportMetric(float64(ls[len(ls)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(ls[len(ls)*99/100].Microseconds()), "p99-µs")
	st := east.d.Status().Links[0]
	b.ReportMetric(float64(st.QueuedBytes)/(1<<20), "backlog-MiB-left")
}
