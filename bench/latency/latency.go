// Package latency summarises latency samples: percentiles p50, p99, p99.9
// and the maximum, computed exactly from the sorted samples.
package latency

import (
	"slices"
	"time"
)

// Summary is the distribution of a set of samples.
type Summary struct {
	N    int
	P50  time.Duration
	P99  time.Duration
	P999 time.Duration
	Max  time.Duration
}

// Summarize sorts samples (in place) and returns their distribution; a
// percentile is the smallest sample at or above that share of the samples.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	return Summary{
		N:    len(samples),
		P50:  Percentile(samples, 50),
		P99:  Percentile(samples, 99),
		P999: Percentile(samples, 99.9),
		Max:  samples[len(samples)-1],
	}
}

// Percentile returns the p-th percentile (nearest rank) of sorted samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}
