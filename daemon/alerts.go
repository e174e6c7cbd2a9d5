package daemon

import (
	"math"
	"time"
)

// AlertOptions set when a destination's backlog raises an alert: when its
// buffer holds more than Messages messages, or its oldest message is older
// than Age, for For, one warning is logged; a note follows when it clears.
// Zero fields take the defaults: 10,000 messages, 10s, 10s.
type AlertOptions struct {
	Messages int
	Age      time.Duration
	For      time.Duration
}

func (a AlertOptions) withDefaults() AlertOptions {
	if a.Messages <= 0 {
		a.Messages = 10_000
	}
	if a.Age <= 0 {
		a.Age = 10 * time.Second
	}
	if a.For <= 0 {
		a.For = 10 * time.Second
	}
	return a
}

// backlogAlert is a peer's alert state, owned by the janitor.
type backlogAlert struct {
	over   time.Time // since when the backlog is over a threshold (zero: it is not)
	raised bool      // the warning was logged
}

// checkUnreachable logs, once per outage, a peer whose link has been down
// for groups.unreachable_grace. Nothing is removed or discarded for it:
// its members stay listed (unreachable) and messages for it wait in its
// buffer, within the buffer's limits, until the link is back. Runs in the
// janitor.
func (d *Daemon) checkUnreachable(p *peer, now time.Time) {
	st := p.status()
	down := st.state != StateUp && st.state != StateIdle && now.Sub(st.since) >= d.cfg.Groups.UnreachableGrace
	if down && !p.pastGrace.Load() {
		q := p.queue.Stats()
		d.log.Warn("peer unreachable past the grace: its members stay listed and messages for it are buffered within the buffer's limits",
			"peer", p.nodeName(), "down_since", st.since, "queued_messages", q.Messages, "queued_bytes", q.Bytes)
	}
	p.pastGrace.Store(down)
	// A restarted peer's previous members stop being candidates once its
	// link has been up for the grace: its services had that long to rejoin.
	if st.state == StateUp && now.Sub(st.since) >= d.cfg.Groups.UnreachableGrace && d.groups.Rejoining(groupsID(p.id)) > 0 {
		d.groups.EndRejoin(groupsID(p.id))
		d.log.Info("restarted peer's previous members no longer routed to: the grace for its services to rejoin is over", "peer", p.nodeName())
	}
}

// checkBacklog updates p's alert from its current figures; called once a
// second by the janitor.
func (d *Daemon) checkBacklog(p *peer, now time.Time) {
	st := p.queue.Stats()
	th := d.alerts
	over := st.Messages > th.Messages || st.OldestAge > th.Age
	a := &p.alert
	switch {
	case over && a.over.IsZero():
		a.over = now
	case over && !a.raised && now.Sub(a.over) >= th.For:
		a.raised = true
		enq, deq, drain := p.rates.get(st.Messages)
		drainText := "never at the current rates"
		if !math.IsInf(drain, 1) {
			drainText = (time.Duration(drain) * time.Second).String()
		}
		d.log.Warn("backlog alert: destination buffer over threshold", "peer", p.nodeName(),
			"queued", st.Messages, "bytes", st.Bytes, "oldest", st.OldestAge.Round(time.Millisecond).String(),
			"enqueue_per_s", round2(enq), "dequeue_per_s", round2(deq), "drain", drainText,
			"for", now.Sub(a.over).Round(time.Second).String())
	case !over && !a.over.IsZero():
		if a.raised {
			d.log.Info("backlog alert cleared", "peer", p.nodeName(), "queued", st.Messages, "lasted", now.Sub(a.over).Round(time.Second).String())
		}
		*a = backlogAlert{}
	}
}
