package wire

import "time"

// MaxTTL is the longest time to live a message can carry: longer TTLs are
// clamped to it (about 34 years: no deadline computed from it overflows).
const MaxTTL = (1 << 40) * time.Millisecond

// TTLMillis is d as a TTL field: milliseconds rounded up, clamped to
// MaxTTL; 0 (none) for d <= 0.
func TTLMillis(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	d = min(d, MaxTTL)
	return uint64((d + time.Millisecond - 1) / time.Millisecond)
}

// TTLDuration is a TTL field as a duration, clamped to MaxTTL.
func TTLDuration(ms uint64) time.Duration {
	return time.Duration(min(ms, uint64(MaxTTL/time.Millisecond))) * time.Millisecond
}
