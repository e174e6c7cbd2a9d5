package daemon

import (
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
)

// The one place where the numbers of the wire protocol meet those of the
// groups and buffer packages. Each pair is checked when the daemon
// compiles: x[a-b] is an index out of range if a > b, and a constant
// overflow if a < b.
func _() {
	var x [1]struct{}
	// Membership operations: MembersDelta.Op and WatchEvent.Op.
	_ = x[wire.OpJoin-uint8(groups.OpJoin)]
	_ = x[wire.OpLeave-uint8(groups.OpLeave)]
	_ = x[wire.OpNoop-uint8(groups.OpNoop)]
	// Routing strategies: Send.Strategy and SendBatch.Strategy.
	_ = x[wire.StrategyClosest-uint8(groups.Closest)]
	_ = x[wire.StrategyRandom-uint8(groups.Random)]
	_ = x[wire.StrategyRoundRobin-uint8(groups.RoundRobin)]
	_ = x[wire.StrategyLeastBacklog-uint8(groups.LeastBacklog)]
	_ = x[wire.StrategyKey-uint8(groups.Key)]
	_ = x[wire.StrategyBroadcast-uint8(groups.Broadcast)]
	// Lanes: StreamInit.Lane, Ack.Lane and the resume positions.
	_ = x[wire.LaneNormal-uint8(buffer.LaneNormal)]
	_ = x[wire.LaneHigh-uint8(buffer.LaneHigh)]
	_ = x[wire.LaneDurable-uint8(buffer.LaneDurable)]
	_ = x[wire.NumLanes-uint8(buffer.NumLanes)]
	// Message flags, which the buffer keeps as the wire has them.
	_ = x[wire.FlagAtMostOnce-buffer.FlagAtMostOnce]
}

// opToWire is a membership operation as MembersDelta and WatchEvent carry it.
func opToWire(op groups.Op) uint8 { return uint8(op) }

// opFromWire is MembersDelta.Op as the registry takes it (which refuses
// an operation it does not know).
func opFromWire(op uint8) groups.Op { return groups.Op(op) }

// strategyFromWire is Send.Strategy as the registry takes it (which
// refuses a strategy it does not know).
func strategyFromWire(s uint8) groups.Strategy { return groups.Strategy(s) }

// laneToWire is a buffer lane as StreamInit and Ack carry it.
func laneToWire(lane int) uint8 { return uint8(lane) }

// laneFromWire is a lane read from the wire as the buffer numbers it, and
// false for a lane the buffer does not have.
func laneFromWire(lane uint8) (int, bool) { return int(lane), lane < wire.NumLanes }

// queuedFlags maps a local send's flags to the lane its message waits on
// in the buffer (FlagHigh: the high lane) and the flags it keeps on the
// link (those of the link's Data frames: the local-only FlagHigh and
// FlagQuiet go).
func queuedFlags(f uint64) (lane uint8, flags uint64) {
	lane = buffer.LaneNormal
	if f&wire.FlagHigh != 0 {
		lane = buffer.LaneHigh
	}
	return lane, f &^ (wire.FlagHigh | wire.FlagQuiet)
}
