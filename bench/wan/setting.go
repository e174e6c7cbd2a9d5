// Package wan is the WAN benchmark: wandist (QUIC and TCP), NATS across a
// gateway, and raw TCP and quic-go references, each with its servers in
// two network namespaces joined by an emulated WAN (50 ms RTT, 0, 0.1 and
// 1 % loss, a tbf rate cap), on bulk goodput, request-reply latency, the
// drain of a backlog after a 10 s blackout, and high-priority latency
// under a saturating bulk flow. It first measures what the emulator
// itself forwards, and picks the link rate below that.
package wan

import "time"

// RTT is the path's round-trip time: the forwarder delays each direction
// by half of it.
const RTT = 50 * time.Millisecond

// CeilingRow is what the path forwards at one setting with no rate cap.
type CeilingRow struct {
	Setting    string
	TCP, QUIC  float64 // goodput of one raw TCP (bbr) and one quic-go flow, bits/s
	UDP        float64 // a UDP flood's delivered bits/s (payload)
	UDPOffered float64 // what the flood sent
	Err        string
}

// Setting is one condition of the path.
type Setting struct {
	Name string
	Loss float64 // share of packets dropped, each direction
}

// Settings are the conditions of a full run.
var Settings = []Setting{{"0 %", 0}, {"0.1 %", 0.001}, {"1 %", 0.01}}

// Config is the length of each workload.
type Config struct {
	Settings   []Setting
	BulkSizes  []int
	Bulk       time.Duration // each bulk run, warm-up included
	Warm       time.Duration // not counted in goodput
	Window     int64         // payload bytes in flight end to end (sent, not yet delivered); 0: WindowFor the link rate
	RRRate     int           // request-reply requests per second
	RRTime     time.Duration // request-reply run
	Blackout   time.Duration
	HealBefore time.Duration // steady load before the blackout
	HealAfter  time.Duration // longest wait after the heal
	HealShare  float64       // offered load as a share of the link rate
	HealSize   int
	HPTime     time.Duration // high-priority request-reply under bulk
	Ceiling    time.Duration // each flow of the emulator's ceiling
}

// DefaultConfig is a full run (about 13 minutes) or a quick smoke run
// (about 3).
func DefaultConfig(quick bool) Config {
	if quick { // a smoke run: every system and workload, short, a small window to drain
		return Config{Settings: []Setting{Settings[0], Settings[2]}, BulkSizes: []int{128, 64 << 10},
			Bulk: 2 * time.Second, Warm: 500 * time.Millisecond, Window: 2 << 20, RRRate: 100, RRTime: time.Second,
			Blackout: 2 * time.Second, HealBefore: time.Second, HealAfter: 6 * time.Second, HealShare: 0.25, HealSize: 16 << 10,
			HPTime: time.Second, Ceiling: 1500 * time.Millisecond}
	}
	return Config{Settings: Settings, BulkSizes: []int{128, 64 << 10},
		Bulk: 8 * time.Second, Warm: 2 * time.Second, RRRate: 100, RRTime: 6 * time.Second,
		Blackout: 10 * time.Second, HealBefore: 2 * time.Second, HealAfter: 15 * time.Second, HealShare: 0.25, HealSize: 16 << 10,
		HPTime: 6 * time.Second, Ceiling: 4 * time.Second}
}

// rateSteps are the link rates the run may choose, highest first.
var rateSteps = []int64{1e9, 500e6, 200e6, 100e6}

// ChooseRate picks the link rate from the emulator's measured ceiling
// (bits/s): the highest step at most half of it, so that the emulator,
// which shares the CPUs with the systems, is never the bottleneck; at
// least 100 Mbit/s (a lower ceiling is reported, and the goodput targets
// are then not judged met).
func ChooseRate(ceiling float64) int64 {
	for _, r := range rateSteps {
		if float64(r) <= ceiling/2 {
			return r
		}
	}
	return rateSteps[len(rateSteps)-1]
}

// WindowFor is the bulk flows' end-to-end window at a link rate: 8
// bandwidth-delay products, at least 8 MiB. It bounds what a flow queues
// in the system's buffers (which a slower lane must wait behind when the
// system has no priority) and what is left to drain after a run.
func WindowFor(rateBits int64) int64 {
	return max(8<<20, 8*int64(float64(rateBits)/8*RTT.Seconds()))
}
