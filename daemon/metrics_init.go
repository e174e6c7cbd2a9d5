package daemon

import (
	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/groups"
)

// Labelled series exist from the start at zero, so that dashboards and
// alerts (rate(), increase(), absent()) see every configured peer and
// every reason on a fresh daemon, not only after the first event. The
// reasons below are every label value the daemon counts under; the
// collectors' series (queueCollector) are emitted for every reason too.

var (
	// droppedReasons label wandist_messages_dropped_total.
	droppedReasons = []string{"not_exported", "no_mailbox", "inbox_full", "expired_held", "watch_overflow"}
	// protocolErrorKinds label wandist_protocol_errors_total.
	protocolErrorKinds = []string{"stream_refused", "bad_ack", "frame", "bad_resume", "digest_mismatch"}
	// localRejectReasons label wandist_local_rejections_total.
	localRejectReasons = []string{"no_hello", "bad_hello", "bad_version", "bad_token", "too_many", "bad_frame",
		"hello_evicted", "answer_too_large"}
	// adminAuthReasons label wandist_admin_auth_failures_total.
	adminAuthReasons = []string{"missing_token", "bad_token", "token_not_set"}
	// helloRefusals label wandist_handshake_rejections_total besides
	// auth.Reasons and the admission limits (refuseHello).
	helloRefusals = []string{"protocol", "mode"}
	// bufferDropReasons label wandist_buffer_discards_total.
	bufferDropReasons = []string{buffer.DropOverflow, buffer.DropExpired, buffer.DropMaxAge, buffer.DropReset, buffer.DropTaken}
	// discoveryResults label wandist_discovery_probes_total.
	discoveryResults = []string{"answered", "failed"}
)

// membershipRefusedReasons label wandist_membership_refused_total: the
// registry's reasons and the daemon's own.
func membershipRefusedReasons() []string {
	out := []string{refusedSnapshotBytes, refusedSnapshotTimeout, refusedUnknownOp, refusedStale}
	for r := groups.RefusedBadEntry; r <= groups.RefusedPartitions; r++ {
		out = append(out, r.String())
	}
	return out
}

// initReasons creates the reason-labelled series at zero.
func (m *metrics) initReasons() {
	for _, r := range droppedReasons {
		m.dropped.WithLabelValues(r)
	}
	for _, k := range protocolErrorKinds {
		m.protocolErrors.WithLabelValues(k)
	}
	for _, r := range localRejectReasons {
		m.localRejects.WithLabelValues(r)
	}
	for _, r := range adminAuthReasons {
		m.adminAuthFailures.WithLabelValues(r)
	}
	for _, r := range helloRefusals {
		m.handshakeRejects.WithLabelValues(r)
	}
}

// initPeer creates a peer's series at zero (its link down); called for
// every peer made, at start-up, on reload and by discovery. Series that
// exist keep their values.
func (m *metrics) initPeer(id auth.PeerID) {
	c, n := id.Cluster, id.Node
	m.linkUp.WithLabelValues(c, n)
	m.reconnects.WithLabelValues(c, n)
	m.rtt.WithLabelValues(c, n)
	m.undeliverable.WithLabelValues(c, n)
	m.removedDiscards.WithLabelValues(c, n)
	m.membershipThrottled.WithLabelValues(c, n)
	for _, r := range membershipRefusedReasons() {
		m.membershipRefused.WithLabelValues(c, n, r)
	}
}

// initRemote creates a remote cluster's discovery series at zero.
func (m *metrics) initRemote(cluster string) {
	for _, r := range discoveryResults {
		m.discoveryProbes.WithLabelValues(cluster, r)
	}
	m.discovered.WithLabelValues(cluster)
	m.discoveryRemoved.WithLabelValues(cluster)
}
