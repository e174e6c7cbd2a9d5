//go:build linux

package chaos

import (
	"testing"
	"time"
)

// Latencies counts the must-arrive flows' messages sent in the span only,
// and the drain from the span's end to the last of them.
func TestLatencies(t *testing.T) {
	t0 := time.Unix(100, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	rel, amo, ttl := flowIndex(t, "rel"), flowIndex(t, "amo"), flowIndex(t, "ttl")
	records := make([][]SendRecord, len(Flows))
	var got []Delivery
	// rel: 100 messages sent 10 ms apart from t0, message i delivered i ms
	// after it was sent, and a duplicate of the last one later still.
	for i := range 100 {
		records[rel] = append(records[rel], SendRecord{At: ms(10 * i), Outcome: Accepted})
		got = append(got, Delivery{Flow: rel, Seq: uint64(i + 1), At: ms(10*i + i)})
	}
	got = append(got, Delivery{Flow: rel, Seq: 100, At: ms(5000)})
	// One more rel message sent after the span, slow: not counted.
	records[rel] = append(records[rel], SendRecord{At: ms(2000), Outcome: Accepted})
	got = append(got, Delivery{Flow: rel, Seq: 101, At: ms(9000)})
	// at-most-once and TTL flows are not counted, however slow.
	records[amo] = []SendRecord{{At: ms(0), Outcome: Accepted}}
	records[ttl] = []SendRecord{{At: ms(0), Outcome: Accepted}}
	got = append(got, Delivery{Flow: amo, Seq: 1, At: ms(8000)}, Delivery{Flow: ttl, Seq: 1, At: ms(8000)})

	l := Latencies(Flows, records, got, ms(0), ms(990))
	want := Latency{Messages: 100, Mean: 49500 * time.Microsecond, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 99 * time.Millisecond,
		Drained: (990 + 99 - 990) * time.Millisecond}
	if l != want {
		t.Fatalf("Latencies = %+v, want %+v", l, want)
	}
	if l := Latencies(Flows, records, got, ms(3000), ms(4000)); l != (Latency{}) {
		t.Fatalf("nothing sent in the span: %+v, want zero", l)
	}
}
