//go:build linux

package chaos

import (
	"time"
)

// FlowResult accounts for every message of one flow in one scenario.
type FlowResult struct {
	Flow       string
	Attempted  int // sends tried
	Sent       int // accepted by the sending daemon (durable: written to its spool)
	Busy       int // refused because a buffer or the spool was full: not sent, not lost
	Uncertain  int // the daemon went away before answering: may or may not have been taken
	Refused    int // other errors: not sent
	Delivered  int // distinct messages the consumer got
	Unconfirm  int // of Delivered, sends whose outcome was Uncertain (counted, not an error)
	Lost       int // accepted, never delivered (TTL flows: see Expired)
	Expired    int // TTL flow: accepted, not delivered (expected once the TTL ran out)
	Duplicated int // extra copies delivered
	OutOfOrder int // deliveries of a lower seq than one already delivered (same flow = same lane)
	Unexpected int // delivered although refused, busy or never sent
	// After the heal: messages sent, and delivered of those.
	SentAfterHeal, DeliveredAfterHeal int
	// From the heal to the first delivery, and to the delivery of the last
	// message that was accepted before the heal and still undelivered then
	// (0: nothing was waiting); -1: no heal or nothing delivered after it.
	HealToFirst, HealToDrained time.Duration
	LostSeqs                   []uint64 // the first few lost seqs, for the report
}

// Check accounts for the messages of every flow: records[i] are flow i's
// sends (index seq-1), got what the consumer printed, in order; heal is
// when the last fault ended (zero: none).
func Check(records [][]SendRecord, got []Delivery, heal time.Time) []FlowResult {
	return CheckFlows(Flows, records, got, heal)
}

// CheckFlows is Check of the given flows (Delivery.Flow indexes them).
func CheckFlows(flows []Flow, records [][]SendRecord, got []Delivery, heal time.Time) []FlowResult {
	out := make([]FlowResult, len(flows))
	type seen struct {
		n     int
		first time.Time
	}
	deliv := make([]map[uint64]*seen, len(flows))
	maxSeq := make([]uint64, len(flows))
	firstAfter := make([]time.Time, len(flows))
	for i := range deliv {
		deliv[i] = map[uint64]*seen{}
	}
	for _, d := range got {
		if d.Flow < 0 || d.Flow >= len(flows) {
			continue
		}
		r := &out[d.Flow]
		s := deliv[d.Flow][d.Seq]
		if s != nil {
			s.n++
			r.Duplicated++
			continue
		}
		deliv[d.Flow][d.Seq] = &seen{n: 1, first: d.At}
		if d.Seq < maxSeq[d.Flow] {
			r.OutOfOrder++
		}
		maxSeq[d.Flow] = max(maxSeq[d.Flow], d.Seq)
		if !heal.IsZero() && !d.At.Before(heal) && firstAfter[d.Flow].IsZero() {
			firstAfter[d.Flow] = d.At
		}
	}
	for fi, recs := range records {
		r := &out[fi]
		r.Flow = flows[fi].Name
		r.HealToFirst, r.HealToDrained = -1, -1
		var drained time.Time
		for i, rec := range recs {
			seq := uint64(i + 1)
			s := deliv[fi][seq]
			r.Attempted++
			switch rec.Outcome {
			case Accepted:
				r.Sent++
			case Busy:
				r.Busy++
			case Uncertain:
				r.Uncertain++
			default:
				r.Refused++
			}
			afterHeal := !heal.IsZero() && !rec.At.Before(heal)
			if afterHeal && rec.Outcome == Accepted {
				r.SentAfterHeal++
				if s != nil {
					r.DeliveredAfterHeal++
				}
			}
			if s == nil {
				if rec.Outcome == Accepted {
					if flows[fi].TTL > 0 {
						r.Expired++
					} else {
						r.Lost++
						if len(r.LostSeqs) < 8 {
							r.LostSeqs = append(r.LostSeqs, seq)
						}
					}
				}
				continue
			}
			r.Delivered++
			switch rec.Outcome {
			case Accepted:
			case Uncertain:
				r.Unconfirm++
			default:
				r.Unexpected++
			}
			// The backlog at the heal: accepted before it, delivered after it.
			if !heal.IsZero() && rec.Outcome == Accepted && rec.At.Before(heal) && !s.first.Before(heal) && s.first.After(drained) {
				drained = s.first
			}
		}
		// Deliveries of seqs never sent.
		for seq := range deliv[fi] {
			if seq > uint64(len(recs)) {
				r.Delivered++
				r.Unexpected++
			}
		}
		if !heal.IsZero() {
			if !firstAfter[fi].IsZero() {
				r.HealToFirst = firstAfter[fi].Sub(heal)
			}
			if drained.IsZero() {
				r.HealToDrained = 0
			} else {
				r.HealToDrained = drained.Sub(heal)
			}
		}
	}
	return out
}
