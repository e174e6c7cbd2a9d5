package latency

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var s []time.Duration
	for i := 1000; i >= 1; i-- { // unsorted on purpose
		s = append(s, time.Duration(i)*time.Microsecond)
	}
	got := Summarize(s)
	want := Summary{N: 1000, P50: 500 * time.Microsecond, P99: 990 * time.Microsecond, P999: 999 * time.Microsecond, Max: 1000 * time.Microsecond}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if (Summarize(nil) != Summary{}) {
		t.Fatal("empty samples must give a zero summary")
	}
	if one := Summarize([]time.Duration{7}); one.P50 != 7 || one.P999 != 7 || one.Max != 7 {
		t.Fatalf("one sample: %+v", one)
	}
}
