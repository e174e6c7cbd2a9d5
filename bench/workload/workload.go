// Package workload runs the benchmark's workloads against any system that
// offers Go-side endpoints: one-way streams counted at the receiver,
// request-reply at a fixed offered rate timed from each request's intended
// send time, stepping up to the highest sustainable rate, and the time from
// healing a cut link to the first redelivered message.
package workload

import (
	"context"
	"time"

	"github.com/wandist/wandist/bench/latency"
	"github.com/wandist/wandist/bench/payload"
)

// Sender is the sending end of a one-way stream.
type Sender interface {
	// Send hands one payload to the system (which must not keep p).
	Send(p []byte) error
	// Sync waits until the system's first hop took everything sent so far:
	// the flow control a publisher uses.
	Sync(ctx context.Context) error
	// Close closes the stream's endpoints, the receiver too.
	Close() error
}

// Piper opens one-way streams: onMsg is called, from one goroutine, with each
// payload the far end receives (valid only during the call).
type Piper interface {
	OpenPipe(ctx context.Context, onMsg func(p []byte)) (Sender, error)
}

// Caller is the requesting end of request-reply; Call is safe for concurrent use.
type Caller interface {
	Call(ctx context.Context, p []byte) ([]byte, error)
	Close() error
}

// RPCer opens request-reply paths to an echo server on the far side.
type RPCer interface {
	OpenRPC(ctx context.Context) (Caller, error)
}

// Cutter cuts and heals the path between a system's two servers.
type Cutter interface {
	SetCut(on bool)
	// CutKind says how the path is cut (for the report).
	CutKind() string
}

// OneWayResult is what a one-way stream delivered.
type OneWayResult struct {
	Size    int
	Counts  payload.Counts
	Refused int           // sends the system refused at once (counted lost too)
	SyncErr int           // flow-control waits that reported a failure
	Elapsed time.Duration // from the first send to the last delivery
	Note    string
}

// MsgsPerSec is the delivered rate.
func (r OneWayResult) MsgsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Counts.Delivered) / r.Elapsed.Seconds()
}

// MBPerSec is the delivered payload rate in MB (10^6 bytes) per second.
func (r OneWayResult) MBPerSec() float64 { return r.MsgsPerSec() * float64(r.Size) / 1e6 }

// LatencyResult is the outcome of request-reply at one offered rate.
type LatencyResult struct {
	Rate     int // offered requests per second
	Duration time.Duration
	Sent     int
	OK       int
	Errors   int // failed, timed out or wrong replies
	Latency  latency.Summary
	Behind   time.Duration // how late the last reply came after the last intended send
	SendLate time.Duration // p99 of how late the generator started a request (its own precision)
	Note     string
}

// Sustained reports whether the run kept up: every request answered and p99
// within bound.
func (r LatencyResult) Sustained(bound time.Duration) bool {
	return r.Sent > 0 && r.Errors == 0 && r.OK == r.Sent && r.Latency.P99 <= bound
}

// RestoreResult is the outcome of a cut and heal under a steady stream.
type RestoreResult struct {
	CutKind       string
	Cut           time.Duration // how long the path was cut
	SentDuring    int           // messages sent while the path was cut
	LostDuring    int           // of those, never delivered
	FirstCutMsg   time.Duration // heal → first delivery of a message sent during the cut (-1: none came)
	FirstAny      time.Duration // heal → first delivery of any message after the heal (-1: none)
	Drained       time.Duration // heal → the last message sent during the cut delivered (-1: not all came)
	Counts        payload.Counts
	Refused       int
	DeliveredEarl int // messages sent during the cut but delivered before the heal
	Note          string
}

// IdleLinkResult is the memory one daemon spends per idle link.
//
// Its first links cost more than the rest: they page in the code of the
// handshake and the transport (file-backed pages, shared with every other
// process of the binary) and grow the runtime's heap from its start-up
// size. Neither is a cost per link, so PerLink is the slope between
// WarmLinks and Links links; Average keeps every one-time cost in.
type IdleLinkResult struct {
	Links     int
	WarmLinks int   // links up when WarmRSS was read (0: not measured)
	BaseRSS   int64 // the daemon's resident bytes with its peers configured but none linked
	WarmRSS   int64 // the same with WarmLinks of them linked and idle
	LinkedRSS int64 // the same with every peer linked and idle
	Note      string
}

// PerLink is the resident memory each idle link adds, in bytes: the growth
// from WarmLinks to Links links, per link. Without a warm reading it is
// Average.
func (r IdleLinkResult) PerLink() float64 {
	if r.WarmLinks <= 0 || r.Links <= r.WarmLinks {
		return r.Average()
	}
	return float64(r.LinkedRSS-r.WarmRSS) / float64(r.Links-r.WarmLinks)
}

// Average is the growth from no link to Links links, per link, in bytes:
// it includes the one-time costs of the first link.
func (r IdleLinkResult) Average() float64 {
	if r.Links == 0 {
		return 0
	}
	return float64(r.LinkedRSS-r.BaseRSS) / float64(r.Links)
}

// GroupMemResult is the memory group members cost on the node they joined
// (local) and on the linked node of the other cluster (remote).
type GroupMemResult struct {
	Members     int
	Groups      int
	LocalBase   int64
	LocalAfter  int64
	RemoteBase  int64
	RemoteAfter int64
	Propagate   time.Duration // from the first join to every member known remotely
	Note        string
}

// RemotePerMember is the remote node's resident growth per member in bytes.
func (r GroupMemResult) RemotePerMember() float64 {
	return float64(r.RemoteAfter-r.RemoteBase) / float64(max(1, r.Members))
}

// LocalPerMember is the local node's resident growth per member in bytes.
func (r GroupMemResult) LocalPerMember() float64 {
	return float64(r.LocalAfter-r.LocalBase) / float64(max(1, r.Members))
}
