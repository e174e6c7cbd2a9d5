package client

import (
	"math/rand/v2"
	"testing"
)

// seenSet agrees with a plain set of the Seqs added and the floors given,
// whatever the order of the Seqs and however far the floor moves.
func TestSeenSetAgreesWithASet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s seenSet
	model := map[uint64]bool{}
	floor, hi := uint64(0), uint64(0)
	for range 200_000 {
		if rng.IntN(50) == 0 && hi > floor {
			floor += uint64(rng.IntN(int(hi-floor) + 1)) // the daemon's done position moves up
		}
		var seq uint64
		switch rng.IntN(4) {
		case 0: // a redelivery of something recent
			seq = floor + 1 + uint64(rng.IntN(int(hi-floor)+1))
		default: // mostly new, a little ahead
			seq = hi + 1 + uint64(rng.IntN(3))
		}
		hi = max(hi, seq)
		want := seq <= floor || model[seq]
		if got := s.add(seq, floor); got != want {
			t.Fatalf("add(%d, floor %d) = %v, want %v", seq, floor, got, want)
		}
		model[seq] = true
	}
	if len(s.bits)-s.head > int(hi-s.base)/64+2 {
		t.Fatalf("window holds %d words for Seqs %d..%d", len(s.bits)-s.head, s.base, hi)
	}
}
