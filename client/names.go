package client

import (
	"fmt"
	"strconv"

	"github.com/wandist/wandist/groups"
)

// KeyHash is the stable hash of routing keys (64-bit FNV-1a of the key's
// bytes, see docs/wire-spec.md, "Routing keys and partitions"): a send
// WithKey(k) to a partitioned group of n partitions goes to an owner of
// partition KeyHash(k) mod n. It is groups.KeyHash, which the daemon routes
// by.
func KeyHash(key string) uint64 { return groups.KeyHash(key) }

// Partition returns the partition of key in a group of n partitions:
// KeyHash(key) mod n. n must be at least 1.
func Partition(key string, n int) int { return int(groups.Partition(key, uint64(n))) }

var strategyNames = [...]string{
	Closest:      "closest",
	Random:       "random",
	RoundRobin:   "round-robin",
	LeastBacklog: "least-backlog",
	ByKey:        "key",
	Broadcast:    "broadcast",
}

// String returns the strategy's name ("closest", "round-robin", ...), or
// "Strategy(n)" for a value that names none.
func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return "Strategy(" + strconv.Itoa(int(s)) + ")"
}

// String returns "reliable", "at-most-once" or "durable" (what ParseMode
// takes), or "Mode(n)" for a value that names none.
func (m Mode) String() string {
	switch m {
	case Reliable:
		return "reliable"
	case AtMostOnce:
		return "at-most-once"
	case Durable:
		return "durable"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// String returns "joined", "left" or "reset", or "EventOp(n)" for a value
// that names none.
func (o EventOp) String() string {
	switch o {
	case Joined:
		return "joined"
	case Left:
		return "left"
	case Reset:
		return "reset"
	}
	return "EventOp(" + strconv.Itoa(int(o)) + ")"
}

// String returns "joined cluster/node/id" (the Op and the member), or
// "reset".
func (e Event) String() string {
	if e.Op == Reset {
		return e.Op.String()
	}
	return e.Op.String() + " " + e.Member.String()
}

// ParseStrategy maps a strategy's name (as String gives it) to the
// Strategy; "" is Closest.
func ParseStrategy(s string) (Strategy, error) {
	if s == "" {
		return Closest, nil
	}
	for i, n := range strategyNames {
		if n == s {
			return Strategy(i), nil
		}
	}
	return Closest, fmt.Errorf("strategy %q: want closest, random, round-robin, least-backlog, key or broadcast", s)
}
