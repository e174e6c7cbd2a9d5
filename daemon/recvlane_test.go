package daemon

import (
	"math"
	"testing"
)

// TestRecvLaneSkipsBounded: a peer that skips Seqs again and again, with
// one message below outstanding, costs the lane at most maxDoneSeqs
// entries, and Seqs near 2^64-1 neither wrap nor open a hole.
func TestRecvLaneSkipsBounded(t *testing.T) {
	var r recvLane
	if !r.accept(1) || !r.accept(2) {
		t.Fatal("first Seqs refused")
	}
	r.complete(2) // 1 stays outstanding
	seq := uint64(2)
	for range 64 {
		seq += maxRecvGap
		if !r.accept(seq) {
			t.Fatalf("Seq %d refused", seq)
		}
		if n := len(r.done); n > maxDoneSeqs {
			t.Fatalf("%d Seqs kept done, more than %d", n, maxDoneSeqs)
		}
	}
	if r.accept(seq) || r.accept(seq-1) {
		t.Fatal("a Seq at or below the highest accepted was accepted again")
	}
	// The end of the Seq space.
	var e recvLane
	if !e.accept(math.MaxUint64-1) || !e.accept(math.MaxUint64) {
		t.Fatal("the last Seqs refused")
	}
	if e.accept(math.MaxUint64) || e.accept(math.MaxUint64-1) || e.accept(5) {
		t.Fatal("a Seq below the highest accepted was accepted after the end")
	}
}
