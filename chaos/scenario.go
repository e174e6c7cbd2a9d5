//go:build linux

package chaos

import (
	"context"
	"time"

	"github.com/wandist/wandist/impair"
)

// Scenario is one fault and its timeline. By default the runner applies
// Net for Hold and clears it (the heal); Do replaces that with a timeline
// of its own (kill and restart, flapping, a stuck consumer).
type Scenario struct {
	Name  string
	Fault string    // what is done, for the table
	Net   *NetFault // the network fault, held for Hold
	Hold  time.Duration
	Do    func(ctx context.Context, r *runState) error
	// SpoolTmpfs puts the sending node's spool on a tmpfs of this size.
	SpoolTmpfs int64
	// Kills: a daemon is killed (at-most-once messages in flight are lost).
	Kills bool
	// KillsSender: the sending daemon is killed, so reliable messages it
	// held unacknowledged may be lost (durable ones are on disk).
	KillsSender bool
	// Stuck: the consumer stops reading for a while (the receiving daemon
	// holds what its client cannot take: nothing may be lost).
	Stuck bool
	// InboxHold sets local.inbox_full: hold (skipped where the daemon does
	// not have it) instead of the default park: a stuck consumer then
	// holds up the lane.
	InboxHold bool
	// SpoolFull: durable sends may be refused (busy or unavailable) while
	// the spool's disk is full; nothing accepted may be lost.
	SpoolFull bool
	// StableLink: nothing breaks the network, so the link must not
	// reconnect (a reconnect loses at-most-once messages in flight).
	StableLink bool
	// QUICConns sets link.quic_connections on both nodes (0: not set).
	QUICConns int
	Rate      int  // messages per second per flow; 0: the run's default
	Plot      bool // record throughput and backlog over time for the plot
	Short     bool // part of the short profile
}

// Scenarios returns the matrix of a profile ("short" or "full"). The short
// profile holds each fault for less time.
func Scenarios(profile string) []Scenario {
	hold := 10 * time.Second
	flap := time.Minute
	long := 90 * time.Second // past the default groups.unreachable_grace (30 s)
	if profile == "short" {
		hold, flap, long = 4*time.Second, 9*time.Second, 35*time.Second
	}
	both := impair.Both
	all := []Scenario{
		{Name: "baseline", Fault: "none", Net: &NetFault{}, Hold: hold, StableLink: true},
		{Name: "delay-100ms-jitter-20ms", Fault: "delay 100 ms ± 20 ms each way", Net: &NetFault{Dir: both, Delay: 100 * time.Millisecond, Jitter: 20 * time.Millisecond}, Hold: hold},
		{Name: "loss-1pct", Fault: "1 % loss each way", Net: &NetFault{Dir: both, Loss: 0.01}, Hold: hold},
		{Name: "loss-5pct", Fault: "5 % loss each way, 50 ms ± 10 ms delay", Net: &NetFault{Dir: both, Loss: 0.05, Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond}, Hold: hold, Short: true},
		{Name: "loss-20pct", Fault: "20 % loss each way", Net: &NetFault{Dir: both, Loss: 0.20}, Hold: hold},
		{Name: "reorder-25pct", Fault: "25 % of packets held back 10 ms (reordered), 5 ms delay", Net: &NetFault{Dir: both, Delay: 5 * time.Millisecond, Reorder: 0.25}, Hold: hold},
		{Name: "duplicate-5pct", Fault: "5 % of packets duplicated each way", Net: &NetFault{Dir: both, Duplicate: 0.05}, Hold: hold},
		{Name: "corrupt-1pct", Fault: "1 % of packets with a byte changed (checksums fixed) each way", Net: &NetFault{Dir: both, Corrupt: 0.01}, Hold: hold},
		{Name: "rate-1mbit", Fault: "1 Mbit/s cap each way", Net: &NetFault{Dir: both, RateBits: 1_000_000}, Hold: hold},
		{Name: "partition-two-way", Fault: "two-way partition (TCP RST, ICMP unreachable)", Net: &NetFault{Dir: both, Reject: true}, Hold: hold},
		{Name: "partition-east-to-west", Fault: "one-way partition: east->west dropped", Net: &NetFault{Dir: impair.Forward, Blackhole: true}, Hold: hold},
		{Name: "partition-west-to-east", Fault: "one-way partition: west->east dropped (acks)", Net: &NetFault{Dir: impair.Backward, Blackhole: true}, Hold: hold},
		{Name: "blackhole", Fault: "blackhole both ways (no FIN, no RST: half-open)", Net: &NetFault{Dir: both, Blackhole: true}, Hold: hold, Short: true},
		{Name: "partition-long", Fault: "blackhole both ways for " + long.String() + ", past the default unreachable_grace (30 s), at 40 msgs/s per flow (the buffer does not fill)",
			Net: &NetFault{Dir: both, Blackhole: true}, Hold: long, Rate: 40, Short: true},
		{Name: "buffer-full", Fault: "blackhole both ways at 5 × the load (1,000 msgs/s per flow): the 4 MiB buffer fills", Net: &NetFault{Dir: both, Blackhole: true}, Hold: hold, Rate: 1000},
		{Name: "flapping", Fault: "link flapping: 2 s up, 1 s down (blackhole), for " + flap.String(), Do: flapping(flap, 2*time.Second, time.Second), Plot: true, Short: true},
		LossBlackoutsScenario(profile),
		{Name: "kill9-sender", Fault: "kill -9 of the sending daemon, restart after 2 s (spool)", Do: killRestart("east", 2*time.Second), Kills: true, KillsSender: true, Short: true},
		{Name: "kill9-receiver", Fault: "kill -9 of the receiving daemon, restart after 2 s (spool)", Do: killRestart("west", 2*time.Second), Kills: true, Short: true},
		{Name: "stuck-consumer", Fault: "consumer stopped (SIGSTOP) while traffic flows; inbox_full: park (the default), 1 MiB client buffer", Do: stuckConsumer(hold), Stuck: true, StableLink: true, Short: true},
		{Name: "consumer-restart", Fault: "the consuming process stopped (SIGTERM) mid-stream and a successor started, twice", Do: consumerRestart(hold), StableLink: true},
		{Name: "kill9-receiver-stuck", Fault: "consumer stopped (SIGSTOP), then the receiving daemon killed (SIGKILL) and restarted after 2 s; the consumer resumes after " + hold.String(),
			Do: stuckThenKill(hold), Stuck: true, Kills: true},
		{Name: "stuck-consumer-hold", Fault: "consumer stopped (SIGSTOP) while traffic flows; inbox_full: hold, 1 MiB client buffer", Do: stuckConsumer(hold), Stuck: true, InboxHold: true, StableLink: true},
		{Name: "spool-disk-full", Fault: "sender's spool on a 384 KiB tmpfs, blackhole until it fills", Net: &NetFault{Dir: both, Blackhole: true}, Hold: hold, SpoolTmpfs: 384 << 10, SpoolFull: true},
	}
	if profile != "short" {
		return all
	}
	var out []Scenario
	for _, s := range all {
		if s.Short {
			out = append(out, s)
		}
	}
	return out
}

// LossBlackouts is the scenario TestQUICLossBlackouts compares QUIC and
// TCP links in.
const LossBlackouts = "loss-blackouts"

// LossBlackoutsScenario is the loss-blackouts scenario of a profile: 25 s
// of faults (5 blackouts) in the short one, 60 s in the full one. It is not part of
// TestChaos's short profile: TestQUICLossBlackouts runs it there, over both
// transports.
func LossBlackoutsScenario(profile string) Scenario {
	total := time.Minute
	if profile == "short" {
		total = 25 * time.Second
	}
	return Scenario{Name: LossBlackouts, Fault: "5 % loss each way, 50 ms RTT, and a 1 s blackout every 5 s, for " + total.String() + "; link.quic_connections 4",
		Do: lossWithBlackouts(total, 5*time.Second, time.Second), QUICConns: 4}
}

// lossWithBlackouts drops 5 % of the packets each way with 25 ms delay each
// way (50 ms RTT), and blackholes the link (keeping the delay) for down in
// the middle of every period, for total: the faults end after a lossy
// stretch, so the time from their end to the last delivery shows whether
// a transport caught up with its backlog under loss.
func lossWithBlackouts(total, period, down time.Duration) func(ctx context.Context, r *runState) error {
	lossy := NetFault{Dir: impair.Both, Loss: 0.05, Delay: 25 * time.Millisecond}
	dark := NetFault{Dir: impair.Both, Blackhole: true, Delay: 25 * time.Millisecond}
	var steps []faultStep
	before := (period - down) / 2
	for range total / period {
		steps = append(steps, faultStep{lossy, before}, faultStep{dark, down}, faultStep{lossy, period - down - before})
	}
	return func(ctx context.Context, r *runState) error { return r.faults(ctx, steps) }
}

// flapping cuts the link (silently) for down every up+down, for total.
func flapping(total, up, down time.Duration) func(ctx context.Context, r *runState) error {
	return func(ctx context.Context, r *runState) error {
		end := time.Now().Add(total)
		for time.Now().Add(up + down).Before(end.Add(time.Millisecond)) {
			if err := r.pause(ctx, up); err != nil {
				return err
			}
			if err := r.fault(ctx, NetFault{Dir: impair.Both, Blackhole: true}, down); err != nil {
				return err
			}
		}
		return nil
	}
}

// killRestart kills one cluster's daemon with SIGKILL and restarts it
// after down, with the same config and spool.
func killRestart(cluster string, down time.Duration) func(ctx context.Context, r *runState) error {
	return func(ctx context.Context, r *runState) error {
		n := r.node(cluster)
		start := time.Now()
		n.Kill9()
		if err := r.pause(ctx, down); err != nil {
			return err
		}
		if err := n.Start(ctx); err != nil {
			return err
		}
		r.window(start, time.Now())
		r.actf("%s killed (SIGKILL) and restarted %.1f s later", n.Name, time.Since(start).Seconds())
		return nil
	}
}

// consumerRestart replaces the consumer process by a successor at a third
// and at two thirds of hold: a process stopped by an operator leaves its
// group and hands over what it did not take; its successor joins and gets
// what waited for the group.
func consumerRestart(hold time.Duration) func(ctx context.Context, r *runState) error {
	return func(ctx context.Context, r *runState) error {
		start := time.Now()
		for range 2 {
			if err := r.pause(ctx, hold/3); err != nil {
				return err
			}
			if err := r.consumer.Restart(ctx); err != nil {
				return err
			}
		}
		r.window(start, time.Now())
		r.actf("consumer restarted twice in %.1f s", time.Since(start).Seconds())
		return nil
	}
}

// stuckThenKill stops the consumer, kills the receiving daemon while the
// consumer is stopped, restarts it after 2 s, and lets the consumer go on
// at the end of hold.
func stuckThenKill(hold time.Duration) func(ctx context.Context, r *runState) error {
	return func(ctx context.Context, r *runState) error {
		start := time.Now()
		if err := r.consumer.Pause(true); err != nil {
			return err
		}
		if err := r.pause(ctx, hold/4); err != nil {
			return err
		}
		west := r.node("west")
		west.Kill9()
		if err := r.pause(ctx, 2*time.Second); err != nil {
			return err
		}
		if err := west.Start(ctx); err != nil {
			return err
		}
		perr := r.pause(ctx, time.Until(start.Add(hold)))
		if err := r.consumer.Pause(false); err != nil {
			return err
		}
		r.window(start, time.Now())
		r.actf("consumer stopped for %.1f s; west killed (SIGKILL) and restarted meanwhile", time.Since(start).Seconds())
		return perr
	}
}

// stuckConsumer stops the consumer process for hold.
func stuckConsumer(hold time.Duration) func(ctx context.Context, r *runState) error {
	return func(ctx context.Context, r *runState) error {
		start := time.Now()
		if err := r.consumer.Pause(true); err != nil {
			return err
		}
		perr := r.pause(ctx, hold)
		if err := r.consumer.Pause(false); err != nil {
			return err
		}
		r.window(start, time.Now())
		r.actf("consumer stopped for %.1f s", time.Since(start).Seconds())
		return perr
	}
}
