package daemon

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
)

// TestMillionMessagesAcrossCuts pushes 1,000,000 messages (a tenth of them
// on the high lane) across a link that is cut every 200ms, over real QUIC
// and TCP sockets, and checks that the receiver gets every one exactly once,
// in order per lane. With -short it sends 100,000.
func TestMillionMessagesAcrossCuts(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	for _, tr := range []string{"quic", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			east, west := pair(t, tr)
			mb := subscribe(t, west, "g", east)
			pub := connect(t, east)

			// Cut the link every 200ms, from alternating sides, until done.
			ctx, cancel := context.WithCancel(context.Background())
			cutsDone := make(chan int)
			go func() {
				cuts := 0
				tick := time.NewTicker(200 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						cutsDone <- cuts
						return
					case <-tick.C:
						d, peer := east.d, "west"
						if cuts%2 == 1 {
							d, peer = west.d, "east"
						}
						if d.DropLink(peer, peer+"-1") {
							cuts++
						}
					}
				}
			}()

			recvErr := make(chan error, 1)
			go func() {
				next := map[string]int{"n": 0, "h": 0}
				for got := 0; got < n; got++ {
					m, err := mb.Receive(ctxT(t, 60*time.Second))
					if err != nil {
						recvErr <- fmt.Errorf("after %d messages (next n=%d h=%d): %w", got, next["n"], next["h"], err)
						return
					}
					lane, num, _ := strings.Cut(string(m.Payload), ":")
					i, _ := strconv.Atoi(num)
					if i != next[lane] {
						recvErr <- fmt.Errorf("lane %s: got %d, want %d (lost, duplicated or reordered)", lane, i, next[lane])
						return
					}
					next[lane]++
				}
				recvErr <- nil
			}()

			start := time.Now()
			counts := map[string]int{}
			for i := 0; i < n; i++ {
				lane, opts := "n", []client.SendOption(nil)
				if i%10 == 0 {
					lane, opts = "h", []client.SendOption{client.WithHighPriority()}
				}
				if err := pub.SendAsync(client.Target{Group: "g"}, []byte(lane+":"+strconv.Itoa(counts[lane])), opts...); err != nil {
					t.Fatal(err)
				}
				counts[lane]++
				if i%20000 == 19999 {
					if err := pub.Flush(ctxT(t, 60*time.Second)); err != nil {
						t.Fatalf("flush after %d: %v", i+1, err)
					}
				}
			}
			if err := pub.Flush(ctxT(t, 60*time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := <-recvErr; err != nil {
				t.Fatal(err)
			}
			cancel()
			cuts := <-cutsDone
			el := time.Since(start)
			st := east.d.Status().Links[0]
			t.Logf("%s: %d messages in %v (%.0f msgs/s) across %d cuts; %d redelivered, %d duplicates dropped at the receiver",
				tr, n, el.Round(time.Millisecond), float64(n)/el.Seconds(), cuts, st.Redelivered, west.d.Status().Links[0].Duplicates)
			if cuts < 2 {
				t.Fatalf("only %d cuts happened", cuts)
			}
		})
	}
}
