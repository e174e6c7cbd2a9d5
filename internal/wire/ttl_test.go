package wire

import (
	"math"
	"testing"
	"time"
)

// TTLs near the ends of their range neither wrap nor overflow a deadline.
func TestTTLClamped(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want uint64
	}{{-time.Second, 0}, {0, 0}, {1, 1}, {time.Millisecond, 1}, {1500 * time.Microsecond, 2}, {math.MaxInt64, 1 << 40}} {
		if got := TTLMillis(c.d); got != c.want {
			t.Errorf("TTLMillis(%v) = %d, want %d", c.d, got, c.want)
		}
	}
	now := time.Now()
	for _, ms := range []uint64{1 << 40, 1 << 62, math.MaxUint64} {
		d := TTLDuration(ms)
		if d != MaxTTL || !now.Add(d).After(now) {
			t.Errorf("TTLDuration(%d) = %v: deadline %v not after now", ms, d, now.Add(d))
		}
	}
}
