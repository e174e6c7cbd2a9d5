package daemon

import "testing"

// BenchmarkReliable4K: one-way reliable throughput, 4 KiB payloads.
func BenchmarkReliable4K(b *testing.B) {
	for _, tr := range []string{"quic", "tcp"} {
		b.Run(tr, func(b *testing.B) {
			east, west := benchPair(b, tr, false)
			benchStream(b, east, west, 4096, nil, nil)
		})
	}
}
