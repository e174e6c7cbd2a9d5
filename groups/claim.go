package groups

import (
	"errors"
	"fmt"
	"slices"
)

// MaxPartitions bounds a partitioned group's number of partitions N (the
// wire's bound on a partition list, wire.MaxPartitions, is the same): a
// partition, below N, fits in 16 bits.
const MaxPartitions = 1 << 16

// MaxNameLen bounds a group name, in bytes.
const MaxNameLen = 255

// ErrBadName is returned for a group name that is empty, too long or holds
// a control character.
var ErrBadName = errors.New("groups: bad group name")

// CheckName reports what is wrong with a group name, if anything.
func CheckName(g string) error {
	if g == "" || len(g) > MaxNameLen {
		return fmt.Errorf("%w: group name must be 1 to %d bytes, got %d", ErrBadName, MaxNameLen, len(g))
	}
	for i := 0; i < len(g); i++ {
		if g[i] < 0x20 || g[i] == 0x7f {
			return fmt.Errorf("%w: group name %q has a control character at byte %d", ErrBadName, g, i)
		}
	}
	return nil
}

// Claim is what a member of a partitioned group owns: the group's number of
// partitions N and the partitions (each < N). The zero Claim: the group is
// not partitioned. A mailbox's claim is the one of its latest join.
//
// Partitions are sorted, without repeats, 2 bytes each: a claim takes no
// more memory than the partition list that brought it, once repeats are
// gone (a varint of a partition above 127 is 2 or 3 bytes).
type Claim struct {
	N          uint64
	Partitions []uint16
}

// NewClaim returns the claim of partitions (in any order, repeats allowed)
// in a group of n partitions: ErrPartitionCount if n is above
// MaxPartitions, a partition is not below n, or n is 0 and partitions are
// claimed.
func NewClaim(n uint64, partitions []uint64) (Claim, error) {
	if n > MaxPartitions {
		return Claim{}, fmt.Errorf("%w: %d partitions, at most %d allowed", ErrPartitionCount, n, MaxPartitions)
	}
	c := Claim{N: n}
	if len(partitions) == 0 {
		return c, nil
	}
	c.Partitions = make([]uint16, len(partitions))
	for i, p := range partitions {
		if p >= n {
			return Claim{}, fmt.Errorf("%w: partition %d of a group with %d partitions", ErrPartitionCount, p, n)
		}
		c.Partitions[i] = uint16(p)
	}
	slices.Sort(c.Partitions)
	c.Partitions = slices.Clip(slices.Compact(c.Partitions))
	return c, nil
}

// check reports what is wrong with a claim built by hand, if anything.
func (c Claim) check() error {
	if c.N > MaxPartitions {
		return fmt.Errorf("%w: %d partitions, at most %d allowed", ErrPartitionCount, c.N, MaxPartitions)
	}
	for i, p := range c.Partitions {
		if uint64(p) >= c.N {
			return fmt.Errorf("%w: partition %d of a group with %d partitions", ErrPartitionCount, p, c.N)
		}
		if i > 0 && p <= c.Partitions[i-1] {
			return fmt.Errorf("%w: partitions not sorted or repeated (%d after %d)", ErrPartitionCount, p, c.Partitions[i-1])
		}
	}
	return nil
}

// Owns reports whether the claim includes partition p.
func (c Claim) Owns(p uint64) bool {
	if p >= MaxPartitions {
		return false
	}
	_, ok := slices.BinarySearch(c.Partitions, uint16(p))
	return ok
}

// List returns the claim's partitions as the wire carries them.
func (c Claim) List() []uint64 {
	if len(c.Partitions) == 0 {
		return nil
	}
	out := make([]uint64, len(c.Partitions))
	for i, p := range c.Partitions {
		out[i] = uint64(p)
	}
	return out
}
