package daemon

import (
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/wandist/wandist/auth"
)

// Warnings about what a peer sent (a refused member, a bad ack, a digest
// that does not match, a message to a group not exported to it) are logged
// at most once per logEvery per peer and reason: a peer that floods them is
// counted in the metrics, and its log lines stay few. Each line says how
// many warnings of that peer and reason were left out since the previous
// one.

// peerWarn limits the warnings of one peer and reason.
type peerWarn struct {
	lim        *rate.Limiter
	suppressed atomic.Int64 // left out since the last line
}

type peerReason struct {
	peer   auth.PeerID
	reason string
}

// warnPeer logs a warning about what peer sent, unless one of the same
// reason was logged less than logEvery ago. The peers are the configured
// ones and the reasons a fixed set, so the limiters kept stay few.
func (d *Daemon) warnPeer(peer auth.PeerID, reason, msg string, args ...any) {
	k := peerReason{peer, reason}
	v, ok := d.peerWarns.Load(k)
	if !ok {
		v, _ = d.peerWarns.LoadOrStore(k, &peerWarn{lim: rate.NewLimiter(rate.Every(logEvery), 1)})
	}
	w := v.(*peerWarn)
	if !w.lim.AllowN(d.now(), 1) {
		w.suppressed.Add(1)
		return
	}
	args = append(args, "peer", peer.String(), "reason", reason, "suppressed", w.suppressed.Swap(0),
		"note", "one line per peer and reason per 10s; every instance is counted in the metrics")
	d.log.Warn(msg, args...)
}
