package daemon

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkGroupsSync: 10,000 groups and 100,000 members over three
// clusters (a third on each node). It reports the time a node needs to get
// a peer's full membership after the link comes up, the rate at which
// deltas propagate, and heap bytes per member.
func BenchmarkGroupsSync(b *testing.B) {
	const groupsN, membersN = 10_000, 100_000
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ns := mesh(b, "quic", []string{"east", "north", "west"}, nil)
	per := membersN / len(ns)
	for i, n := range ns {
		for m := 0; m < per; m++ {
			n.d.Groups().Join("g"+strconv.Itoa((m*7+i)%groupsN), uint64(1_000_000*(i+1)+m))
		}
	}
	total := func(n *node) int {
		sum := 0
		for _, c := range n.d.Groups().Groups() {
			sum += c
		}
		return sum
	}
	waitTotal := func(n *node, want int) time.Duration {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for {
			ch := n.d.Groups().Changed()
			if total(n) >= want {
				return time.Since(start)
			}
			select {
			case <-ch:
			case <-ctx.Done():
				b.Fatalf("%s has %d of %d members", n.cfg.Cluster, total(n), want)
			}
		}
	}
	// Deltas: everything above went out as deltas on the up links.
	deltaTime := waitTotal(ns[0], per*len(ns))
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Full sync: cut east from north, forget north's members, heal, and time
	// from the link being up again to all of north's members being in.
	b.ResetTimer()
	var syncTime time.Duration
	north := ns[1]
	for range b.N {
		ns[0].block("north", "north-1", true)
		north.block("east", "east-1", true)
		ns[0].d.Groups().ForgetPeer(groupsID(north.d.id.ID))
		ns[0].block("north", "north-1", false)
		north.block("east", "east-1", false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := ns[0].d.WaitLink(ctx, "north", "north-1", true); err != nil {
			b.Fatal(err)
		}
		cancel()
		syncTime += waitTotal(ns[0], per*len(ns))
	}
	b.StopTimer()
	b.ReportMetric(float64(syncTime.Microseconds())/1000/float64(b.N), "full-sync-ms/33k-members")
	b.ReportMetric(float64(2*per)/deltaTime.Seconds(), "deltas/s")
	// Each node holds every member (its own and both peers'): 3 nodes × 100k entries.
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(ns)*membersN), "heap-B/member")
}
