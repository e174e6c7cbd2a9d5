package configs

import (
	"fmt"
	"math/big"
	"strings"
)

// sizeUnits are the units ParseSize accepts, matched without regard to case.
var sizeUnits = []struct {
	name string
	mult int64
}{
	{"B", 1},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
}

// ParseSize parses a byte count: a non-negative number, optionally with a
// fraction, followed by an optional unit — B, KB, MB, GB, TB (powers of
// 1000) or KiB, MiB, GiB, TiB (powers of 1024), in any case, with or without
// a space. "65536", "64MiB", "512 KiB", "1.5GiB" and "10MB" are sizes. The
// result must be a whole number of bytes that fits in an int64.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	end := 0
	for end < len(t) && (t[end] >= '0' && t[end] <= '9' || t[end] == '.') {
		end++
	}
	num, unit := t[:end], strings.TrimSpace(t[end:])
	if num == "" || strings.Count(num, ".") > 1 || num[0] == '.' || num[len(num)-1] == '.' {
		return 0, fmt.Errorf(`bad size %q: want a non-negative number with an optional unit, such as 65536, "512KiB" or "64MiB"`, abbrev(s))
	}
	mult := int64(0)
	for _, u := range sizeUnits {
		if unit == "" || strings.EqualFold(unit, u.name) {
			mult = u.mult
			break
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("bad size %q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", abbrev(s), abbrev(unit))
	}
	if len(num) > 40 {
		return 0, fmt.Errorf("bad size %q: too large", abbrev(s))
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("bad size %q: bad number %q", abbrev(s), num)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("bad size %q: not a whole number of bytes", abbrev(s))
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("bad size %q: too large", abbrev(s))
	}
	return n.Int64(), nil
}
