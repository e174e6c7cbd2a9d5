package transport

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"
)

// benchPair links a client and a server over tc and returns a stream the
// client opened and the server's end of it.
func benchPair(b *testing.B, tc transportCase) (client, server Stream) {
	b.Helper()
	srv, cli := newIdentity(b, "server"), newIdentity(b, "client")
	tr := tc.mk(Options{})
	ln, err := tr.Listen(tc.listenAddr, serverTLS(srv, cli.pin))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc, err := tr.Dial(ctx, ln.Addr().String(), clientTLS(cli, srv.pin))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	sc, err := ln.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sc.Close() })
	s, err := cc.OpenStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, err := s.Write([]byte{0}); err != nil { // make the stream visible
		b.Fatal(err)
	}
	peer, err := sc.AcceptStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { peer.Close() })
	if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	return s, peer
}

// BenchmarkStreamThroughput measures one stream's throughput with 64 KiB
// writes on loopback (mem: in memory); ns/op is per write, MB/s is payload.
func BenchmarkStreamThroughput(b *testing.B) {
	const chunk = 64 << 10
	for _, tc := range transportCases() {
		b.Run(tc.name, func(b *testing.B) {
			s, peer := benchPair(b, tc)
			buf := make([]byte, chunk)
			want := int64(b.N) * chunk
			received := make(chan error, 1)
			go func() {
				_, err := io.CopyN(io.Discard, peer, want)
				received <- err
			}()

			b.SetBytes(chunk)
			b.ResetTimer()
			for range b.N {
				if _, err := s.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-received; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
		})
	}
}

// BenchmarkStreamRoundTrip measures what a transport adds to a request's
// round trip at a low rate: a 128-byte message goes out on one stream and
// the peer echoes it, one every pace, so that both sides sleep between
// messages as they do at 1,000 requests a second. ns/op is the mean round
// trip; p50-ns and p99-ns are its percentiles.
func BenchmarkStreamRoundTrip(b *testing.B) {
	const size, pace = 128, time.Millisecond
	for _, tc := range transportCases() {
		b.Run(tc.name, func(b *testing.B) {
			s, peer := benchPair(b, tc)
			echoed := make(chan error, 1)
			go func() {
				buf := make([]byte, size)
				for {
					if _, err := io.ReadFull(peer, buf); err != nil {
						echoed <- err
						return
					}
					if _, err := peer.Write(buf); err != nil {
						echoed <- err
						return
					}
				}
			}()
			msg, back := make([]byte, size), make([]byte, size)
			rtts := make([]time.Duration, 0, b.N)
			var total time.Duration
			b.ResetTimer()
			for range b.N {
				time.Sleep(pace)
				start := time.Now()
				if _, err := s.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(s, back); err != nil {
					b.Fatal(err)
				}
				rtt := time.Since(start)
				total += rtt
				rtts = append(rtts, rtt)
			}
			b.StopTimer()
			slices.Sort(rtts)
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
			b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(rtts[len(rtts)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
