package spool

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppendDurable measures appends of 128-byte payloads, each waited
// for until it is fsynced, from one goroutine and from 8 in parallel (group
// commit lets one fsync cover the appends of all 8).
func BenchmarkAppendDurable(b *testing.B) {
	for _, goroutines := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			s, _ := mustOpen(b, testOptions(b.TempDir()))
			defer mustClose(b, s)
			payload := make([]byte, 128)
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for g := range goroutines {
				n := b.N / goroutines
				if g < b.N%goroutines {
					n++
				}
				wg.Go(func() {
					peer := fmt.Sprintf("bench/%d", g)
					done := make(chan error, 1)
					for i := 1; i <= n; i++ {
						s.Append(&Message{Peer: peer, Seq: uint64(i), Payload: payload}, func(err error) { done <- err })
						if err := <-done; err != nil {
							b.Error(err)
							return
						}
						if i%1000 == 0 {
							s.Ack(peer, uint64(i)) // keep the spool small
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(st.Appends)/float64(max(1, st.Fsyncs)), "msgs/fsync")
		})
	}
}
