package wan

import (
	"errors"
	"time"

	"github.com/wandist/wandist/bench/workload"
)

// ErrUnknown is returned for an unknown system name.
var ErrUnknown = errors.New("unknown system")

// Workload names.
const (
	WBulk = "bulk"
	WRR   = "rr"
	WHeal = "heal"
	WHP   = "hp"
)

// Cost is one server process's CPU time during a workload.
type Cost struct {
	Proc string
	CPU  time.Duration
}

// HPResult is request-reply on the high-priority path while a bulk flow
// saturates the link.
type HPResult struct {
	RR   workload.LatencyResult
	Bulk BulkResult
}

// Row is one workload on one system at one setting.
type Row struct {
	System   string
	Setting  string
	Workload string
	Size     int // bulk payload bytes
	Bulk     *BulkResult
	RR       *workload.LatencyResult
	Heal     *HealResult
	HP       *HPResult
	Costs    []Cost
	Err      string
}

// Result is a finished WAN run.
type Result struct {
	Command  string
	Machine  []string
	Path     string // how each fault is applied
	Config   Config
	Ceiling  []CeilingRow
	Rate     int64 // the link rate chosen, bits/s
	Forced   bool  // the rate was given, not chosen from the ceiling
	Rows     []Row
	Complete bool // a full run of every system
}

func (r *Result) find(system, setting, wl string, size int) *Row {
	for i := range r.Rows {
		x := &r.Rows[i]
		if x.System == system && x.Setting == setting && x.Workload == wl && x.Size == size && x.Err == "" {
			return x
		}
	}
	return nil
}

// goodput is a bulk row's goodput in bits/s, or -1.
func (r *Result) goodput(system, setting string, size int) float64 {
	if x := r.find(system, setting, WBulk, size); x != nil && x.Bulk != nil {
		return x.Bulk.Goodput
	}
	return -1
}

func (r *Result) rrP99(system, setting string) time.Duration {
	if x := r.find(system, setting, WRR, 0); x != nil && x.RR != nil && x.RR.OK > 0 {
		return x.RR.Latency.P99
	}
	return -1
}

func (r *Result) hpP99(system string) time.Duration {
	if x := r.find(system, Settings[0].Name, WHP, 0); x != nil && x.HP != nil && x.HP.RR.OK > 0 {
		return x.HP.RR.Latency.P99
	}
	return -1
}

func (r *Result) heal(system string) *HealResult {
	if x := r.find(system, Settings[0].Name, WHeal, 0); x != nil {
		return x.Heal
	}
	return nil
}

// SystemNames lists the systems in the order of the report.
var SystemNames = []string{"wandist-quic", "wandist-quic4", "wandist-tcp", "nats", "raw-tcp-bbr", "raw-tcp-cubic", "raw-quic-go"}

// describe says what a system is and how its high-priority path is made.
var describe = map[string][2]string{
	"wandist-quic":  {"wandistd ↔ wandistd over QUIC (quic-go), reliable mode; SDK clients on each daemon's unix socket", "client.WithHighPriority (the high lane of the same link)"},
	"wandist-quic4": {"the same with link.quic_connections: 4 on both daemons (each stream striped over 4 QUIC connections)", "client.WithHighPriority (the high lane of the same link)"},
	"wandist-tcp":   {"wandistd ↔ wandistd over TCP+TLS 1.3+yamux (kernel default CC, bbr), reliable mode", "client.WithHighPriority (the high lane of the same link)"},
	"nats":          {"nats-server ↔ gateway ↔ nats-server (TCP, bbr); clients on each server", "a second subject (same gateway connection)"},
	"raw-tcp-bbr":   {"one TCP connection east → west, congestion control bbr, length-prefixed frames", "a second TCP connection"},
	"raw-tcp-cubic": {"one TCP connection east → west, congestion control cubic, length-prefixed frames", "a second TCP connection"},
	"raw-quic-go":   {"one quic-go connection, one stream per flow, wandist's windows (stream 8 MiB, connection 32 MiB, whole connection window from the start)", "a second stream of the same connection"},
}
