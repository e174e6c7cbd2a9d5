package daemon

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/wandist/wandist/auth"
)

// metrics are the daemon's Prometheus metrics, on its own registry.
type metrics struct {
	reg                 *prometheus.Registry
	linkUp              *prometheus.GaugeVec
	reconnects          *prometheus.CounterVec
	rtt                 *prometheus.GaugeVec
	handshakeRejects    *prometheus.CounterVec
	quicRetries         prometheus.Counter
	quicInitialsDropped prometheus.Counter
	protocolErrors      *prometheus.CounterVec
	sent                prometheus.Counter
	received            prometheus.Counter
	duplicates          prometheus.Counter
	delivered           prometheus.Counter
	dropped             *prometheus.CounterVec
	busy                prometheus.Counter
	rerouted            prometheus.Counter
	unconfirmed         prometheus.Counter
	held                prometheus.Gauge
	reroutedRemote      prometheus.Counter
	undeliverable       *prometheus.CounterVec
	removedDiscards     *prometheus.CounterVec
	holdFullWaits       prometheus.Counter
	discoveryMetrics    // discover.go
	relayMetrics        // relay.go
	gatewayMetrics      // gatewaymembers.go
	spoolErrors         prometheus.Counter
	localClients        prometheus.Gauge
	localRejects        *prometheus.CounterVec
	// adminAuthFailures counts admin requests refused for their token.
	adminAuthFailures *prometheus.CounterVec
	localWaits        prometheus.Counter // answers that waited for room in their client's buffer
	// membershipRefused and snapshotBytes: what peers publish (membership_in.go).
	membershipRefused *prometheus.CounterVec
	// membershipThrottled counts membership frames read late for
	// groups.membership_rate (control.go).
	membershipThrottled *prometheus.CounterVec
	snapshotBytes       prometheus.Gauge
	// linksClosed counts up links closed for their peer's certificate or idle
	// (trust.go).
	linksClosed *prometheus.CounterVec
	gossip      gossipMetrics // cluster.go
}

func newMetrics(d *Daemon) *metrics {
	peerLabels := []string{"cluster", "node"}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		linkUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wandist_link_up",
			Help: "1 while the link to the peer is up, else 0."}, peerLabels),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_link_reconnects_total",
			Help: "Times a link to the peer came up again after the first time."}, peerLabels),
		rtt: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "wandist_link_rtt_seconds",
			Help: "Last measured round-trip time of the link's keepalive."}, peerLabels),
		handshakeRejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_handshake_rejections_total",
			Help: "Link handshakes rejected, by reason: the peer's certificate or name (no_certificate, bad_certificate, unknown_peer, unpinned_key, name_mismatch, wrong_peer, revoked, expired, untrusted_ca, wrong_trust_domain), admission (rate_limited, rate_limited_total, too_many_from_address, too_many_handshakes, hello_timeout, tls), its hello (protocol, mode)."}, []string{"reason"}),
		protocolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_protocol_errors_total",
			Help: "Protocol violations seen on links, by kind: stream_refused, bad_ack, frame, bad_resume, digest_mismatch."}, []string{"kind"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_messages_sent_total",
			Help: "Messages written to links (including redeliveries)."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_messages_received_total",
			Help: "Messages read from links (including duplicates)."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_duplicates_dropped_total",
			Help: "Redelivered messages dropped because they had already been delivered."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_messages_delivered_total",
			Help: "Messages handed to local mailboxes."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_messages_dropped_total",
			Help: "Messages discarded on this node's receiving side, by reason: not_exported, no_mailbox, inbox_full, expired_held, watch_overflow."}, []string{"reason"}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_sends_busy_total",
			Help: "Sends answered busy because the destination buffer was full."}),
		removedDiscards: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_peer_removed_discards_total",
			Help: "Messages discarded from a peer's buffer because a reload removed the peer."}, peerLabels),
		undeliverable: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_messages_undeliverable_total",
			Help: "Messages this node sent to an address whose mailbox the peer no longer had (the peer reported them)."}, peerLabels),
		reroutedRemote: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_messages_rerouted_remote_total",
			Help: "Held group messages this node routed again, by their strategy and key, to their group's member on another node."}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wandist_messages_held",
			Help: "Reliable messages from other nodes waiting on this node for room at their client or for a member of their group."}),
		holdFullWaits: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_hold_full_waits_total",
			Help: "Times a link lane waited because the node's hold was full (local.hold_bytes, local.hold_messages)."}),
		unconfirmed: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_messages_unconfirmed_total",
			Help: "Reliable messages whose local client went away before confirming them (their senders resend them)."}),
		rerouted: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_messages_rerouted_total",
			Help: "Group messages whose mailbox was gone, delivered to another local member of the group."}),
		spoolErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_spool_errors_total",
			Help: "Durable sends that failed because the spool could not store them."}),
		localClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wandist_local_clients",
			Help: "Clients connected on the local socket."}),
		localRejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_local_rejections_total",
			Help: "Local clients refused or disconnected, by reason: no_hello, bad_hello, bad_version, bad_token, too_many, bad_frame, hello_evicted; and requests refused, by reason: answer_too_large."}, []string{"reason"}),
		localWaits: prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_local_answer_waits_total",
			Help: "Times the answer to a local client's request waited for room in its buffer (local.client_buffer): its requests were not read meanwhile."}),
	}
	m.membershipRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_membership_refused_total",
		Help: "Members a peer published that this node refused, and its snapshots discarded, by peer and reason: not_imported, members, groups, partitions, partition_count, bad_entry, unknown_op, stale, snapshot_bytes, snapshot_timeout."},
		[]string{"cluster", "node", "reason"})
	m.snapshotBytes = prometheus.NewGauge(prometheus.GaugeOpts{Name: "wandist_membership_snapshot_bytes",
		Help: "Bytes of peers' membership snapshots being received (started, not yet complete)."})
	m.reg.MustRegister(m.membershipRefused, m.snapshotBytes)
	m.reg.MustRegister(m.linkUp, m.reconnects, m.rtt, m.handshakeRejects, m.protocolErrors, m.sent, m.received,
		m.duplicates, m.delivered, m.dropped, m.busy, m.rerouted, m.unconfirmed, m.undeliverable, m.removedDiscards, m.reroutedRemote, m.held, m.holdFullWaits, m.spoolErrors, m.localClients, m.localRejects,
		m.localWaits,
		&queueCollector{d: d},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.quicRetries = prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_quic_retries_total",
		Help: "New QUIC connections asked to prove their source address with a Retry (many handshakes in progress, or the source's unproven attempts over their rate)."})
	m.quicInitialsDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "wandist_quic_initials_dropped_total",
		Help: "QUIC Initial packets dropped before any work because their source sent more than 64 a second (burst 128)."})
	m.reg.MustRegister(m.quicRetries, m.quicInitialsDropped)
	// The refusal reasons before authentication exist from the start, so
	// that dashboards and alerts see zeros on a fresh daemon.
	for _, r := range []string{"rate_limited", "rate_limited_total", "too_many_from_address", "too_many_handshakes", "hello_timeout", "tls"} {
		m.handshakeRejects.WithLabelValues(r)
	}
	m.adminAuthFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_admin_auth_failures_total",
		Help: "Admin HTTP requests refused, by reason: missing_token, bad_token (admin.token is set), token_not_set (POST /v1/reload or pprof without admin.token)."}, []string{"reason"})
	m.reg.MustRegister(m.adminAuthFailures)
	m.membershipThrottled = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_membership_throttled_total",
		Help: "Membership frames from the peer read late: it sent more than groups.membership_rate."}, peerLabels)
	m.reg.MustRegister(m.membershipThrottled)
	m.addDiscovery()
	m.addRelay()
	m.addGatewayMembers()
	m.linksClosed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_links_closed_total",
		Help: "Up links this node closed, by reason: revoked (trust.revoked_file), certificate_expired, idle (an on-demand link to a node of a remote cluster that carried nothing for remotes[].idle_close)."}, []string{"reason"})
	for _, r := range []string{closeRevoked, closeExpired, closedIdle} {
		m.linksClosed.WithLabelValues(r)
	}
	for _, r := range auth.Reasons {
		m.handshakeRejects.WithLabelValues(string(r))
	}
	m.reg.MustRegister(m.linksClosed, &certCollector{d: d})
	m.gossip = newGossipMetrics(m.reg)
	m.initReasons() // metrics_init.go
	return m
}

// queueCollector reports every peer's buffer figures at scrape time.
type queueCollector struct{ d *Daemon }

var (
	descQueued  = prometheus.NewDesc("wandist_buffer_messages", "Messages held for the peer (unsent or unacked).", []string{"cluster", "node"}, nil)
	descBytes   = prometheus.NewDesc("wandist_buffer_bytes", "Payload bytes held for the peer.", []string{"cluster", "node"}, nil)
	descOldest  = prometheus.NewDesc("wandist_buffer_oldest_seconds", "Age of the oldest message held for the peer.", []string{"cluster", "node"}, nil)
	descDrops   = prometheus.NewDesc("wandist_buffer_discards_total", "Messages discarded from the peer's buffer, by reason: overflow (drop-oldest), ttl, max_age, discarded (peer gone for good), taken (routed elsewhere).", []string{"cluster", "node", "reason"}, nil)
	descRedel   = prometheus.NewDesc("wandist_buffer_redelivered_total", "Messages sent again after a reconnect.", []string{"cluster", "node"}, nil)
	descGroups  = prometheus.NewDesc("wandist_groups", "Groups known to this node.", nil, nil)
	descMembers = prometheus.NewDesc("wandist_group_members", "Group members known to this node (all groups, all nodes).", nil, nil)
	descEnq     = prometheus.NewDesc("wandist_buffer_enqueued_total", "Messages accepted into the peer's buffer.", []string{"cluster", "node"}, nil)
	descDeq     = prometheus.NewDesc("wandist_buffer_dequeued_total", "Messages that left the peer's buffer delivered (acknowledged, or sent at most once).", []string{"cluster", "node"}, nil)
	descDrain   = prometheus.NewDesc("wandist_buffer_drain_seconds", "Estimated seconds to drain the peer's buffer at the current rates: 0 when empty, +Inf when it never drains at them (JSON null in /v1/status).", []string{"cluster", "node"}, nil)
	descSpoolB  = prometheus.NewDesc("wandist_spool_bytes", "Bytes of spool segment files.", nil, nil)
	descFsync   = prometheus.NewDesc("wandist_spool_fsync_seconds_total", "Time spent in spool fsyncs.", nil, nil)
	descFsyncs  = prometheus.NewDesc("wandist_spool_fsyncs_total", "Spool fsyncs (each commits a group of records).", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueued, descBytes, descOldest, descDrops, descRedel, descGroups, descMembers, descEnq, descDeq, descDrain, descSpoolB, descFsync, descFsyncs} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.d.peerList() {
		id := p.id
		s := p.queue.Stats()
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(s.Messages), id.Cluster, id.Node)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(s.Bytes), id.Cluster, id.Node)
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, s.OldestAge.Seconds(), id.Cluster, id.Node)
		ch <- prometheus.MustNewConstMetric(descRedel, prometheus.CounterValue, float64(s.Redelivered), id.Cluster, id.Node)
		ch <- prometheus.MustNewConstMetric(descEnq, prometheus.CounterValue, float64(s.Enqueued), id.Cluster, id.Node)
		ch <- prometheus.MustNewConstMetric(descDeq, prometheus.CounterValue, float64(s.Dequeued), id.Cluster, id.Node)
		_, _, drain := p.rates.get(s.Messages)
		ch <- prometheus.MustNewConstMetric(descDrain, prometheus.GaugeValue, drain, id.Cluster, id.Node)
		for _, reason := range bufferDropReasons { // every reason, 0 until counted
			ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(s.Dropped[reason]), id.Cluster, id.Node, reason)
		}
		for reason, n := range s.Dropped {
			if !slices.Contains(bufferDropReasons, reason) {
				ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(n), id.Cluster, id.Node, reason)
			}
		}
	}
	gs := c.d.groups.Groups()
	members := 0
	for _, n := range gs {
		members += n
	}
	ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(len(gs)))
	ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(members))
	if sp := c.d.spool; sp != nil {
		ss := sp.Stats()
		ch <- prometheus.MustNewConstMetric(descSpoolB, prometheus.GaugeValue, float64(ss.Bytes))
		ch <- prometheus.MustNewConstMetric(descFsync, prometheus.CounterValue, ss.FsyncTotal.Seconds())
		ch <- prometheus.MustNewConstMetric(descFsyncs, prometheus.CounterValue, float64(ss.Fsyncs))
	}
}
