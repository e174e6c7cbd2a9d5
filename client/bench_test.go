package client_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
)

// BenchmarkSendLocal: one-way messages from an SDK client through one daemon
// to a local mailbox (128-byte payloads, pipelined SendAsync). allocs/op
// counts the whole process: SDK and daemon.
func BenchmarkSendLocal(b *testing.B) {
	socket, stop := localDaemon()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Socket: socket})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rc, _ := client.Connect(ctx, client.Options{Socket: socket})
	defer rc.Close()
	mb, _ := rc.NewMailbox(ctx)
	payload := bytes.Repeat([]byte("x"), 128)
	target := client.Target{Addr: mb.Addr()}
	done := make(chan int)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() {
		n := 0
		for ; n < b.N; n++ {
			if _, err := mb.Receive(ctx); err != nil {
				break
			}
		}
		done <- n
	}()
	for i := 0; i < b.N; i++ {
		if err := c.SendAsync(target, payload); err != nil {
			b.Fatal(err)
		}
		if i%8192 == 8191 {
			if err := c.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := c.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if got := <-done; got != b.N {
		b.Fatalf("received %d of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
