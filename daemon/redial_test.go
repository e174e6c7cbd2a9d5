package daemon

import (
	"testing"
	"time"
)

// A link that was up, however briefly, starts the backoff over: behind a
// path that flaps, the next dials wait as the first ones after a failure
// do, not the reconnect_max the failures before the link had reached.
func TestRedialStartsOverAfterALink(t *testing.T) {
	const lo, hi = 20 * time.Millisecond, 10 * time.Second
	rd := newRedial(lo, hi)
	for range 20 {
		rd.afterFailure() // the backoff is at its maximum now
	}
	rd.linkWasUp()
	if w := rd.afterLink(); w > lo {
		t.Fatalf("wait after a link: %v, want at most reconnect_min %v", w, lo)
	}
	for i, limit := range []time.Duration{lo, 2 * lo, 4 * lo} {
		if w := rd.afterFailure(); w > limit {
			t.Fatalf("failure %d after the link: wait %v, want at most %v", i+1, w, limit)
		}
	}
}

// While dials fail the wait grows to reconnect_max, jittered below it.
func TestRedialGrowsWhileDialsFail(t *testing.T) {
	const lo, hi = 20 * time.Millisecond, 10 * time.Second
	rd := newRedial(lo, hi)
	var longest time.Duration
	for range 60 {
		w := rd.afterFailure()
		if w > hi {
			t.Fatalf("wait %v over reconnect_max %v", w, hi)
		}
		longest = max(longest, w)
	}
	// 60 draws, the last 50 at the ceiling: all below max/2 has odds of 2^-50.
	if longest < hi/2 {
		t.Fatalf("longest wait %v after 60 failures, want near reconnect_max %v", longest, hi)
	}
}
