package transport

import (
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkStreamThroughput measures one stream's throughput with 64 KiB
// writes on loopback (mem: in memory); ns/op is per write, MB/s is payload.
func BenchmarkStreamThroughput(b *testing.B) {
	const chunk = 64 << 10
	for _, tc := range transportCases() {
		b.Run(tc.name, func(b *testing.B) {
			srv, cli := newIdentity(b, "server"), newIdentity(b, "client")
			tr := tc.mk(Options{})
			ln, err := tr.Listen(tc.listenAddr, serverTLS(srv, cli.pin))
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			client, err := tr.Dial(ctx, ln.Addr().String(), clientTLS(cli, srv.pin))
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close()
			server, err := ln.Accept(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer server.Close()

			s, err := client.OpenStream(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			buf := make([]byte, chunk)
			if _, err := s.Write(buf[:1]); err != nil { // make the stream visible
				b.Fatal(err)
			}
			peer, err := server.AcceptStream(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer peer.Close()
			want := int64(b.N)*chunk + 1
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
