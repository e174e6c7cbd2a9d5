//go:build linux

package chaos

import (
	"fmt"
	"slices"
	"time"

	"github.com/wandist/wandist/client"
)

// Latency is the send→delivery time of the messages of the must-arrive
// flows (reliable without a TTL, on both lanes, and durable) sent during
// a span, and how long the last of them took after the span ended.
type Latency struct {
	Messages            int           // delivered messages counted
	Mean, P50, P99, Max time.Duration // send→first delivery
	// Drained: from the end of the span to the delivery of the last
	// message sent in it (0 if all arrived before the end).
	Drained time.Duration
}

func (l Latency) String() string {
	return fmt.Sprintf("send→delivery mean %s, p50 %s, p99 %s, max %s over %d msgs; faults end→all delivered %s",
		dur(l.Mean), dur(l.P50), dur(l.P99), dur(l.Max), l.Messages, dur(l.Drained))
}

// mustArrive reports whether every accepted message of f must be delivered.
func mustArrive(f Flow) bool {
	return f.Mode == client.Durable || f.Mode == client.Reliable && f.TTL == 0
}

// Latencies measures the must-arrive flows' messages accepted from from to
// to: records[i] are flows[i]'s sends (index seq-1), got the deliveries.
// Messages never delivered are not counted (the checker reports them).
func Latencies(flows []Flow, records [][]SendRecord, got []Delivery, from, to time.Time) Latency {
	first := make([]map[uint64]time.Time, len(flows))
	for i := range first {
		first[i] = map[uint64]time.Time{}
	}
	for _, d := range got {
		if d.Flow < 0 || d.Flow >= len(flows) {
			continue
		}
		if _, ok := first[d.Flow][d.Seq]; !ok {
			first[d.Flow][d.Seq] = d.At
		}
	}
	var l Latency
	var lat []time.Duration
	for fi, recs := range records {
		if fi >= len(flows) || !mustArrive(flows[fi]) {
			continue
		}
		for i, rec := range recs {
			at, ok := first[fi][uint64(i+1)]
			if rec.Outcome != Accepted || rec.At.Before(from) || rec.At.After(to) || !ok {
				continue
			}
			lat = append(lat, at.Sub(rec.At))
			l.Drained = max(l.Drained, at.Sub(to))
		}
	}
	if len(lat) == 0 {
		return l
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	l.Mean = sum / time.Duration(len(lat))
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	l.Messages, l.P50, l.P99, l.Max = len(lat), pct(0.50), pct(0.99), lat[len(lat)-1]
	return l
}
