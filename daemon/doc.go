// Package daemon is the core of wandistd: it owns the node's identity, its
// links to peers in other clusters, the per-destination buffers, the group
// registry, the local socket that services use, and the admin listener.
//
// # The trip of a message
//
// A message sent by a service on this node to a mailbox on another node
// goes through these stages, each in its own file:
//
//	local.go        a local client's connection: its reader goroutine reads
//	                frames from the Unix socket and hands each request on
//	send.go         routing: the address, or the group member that the
//	                group's strategy picks (groups.Registry), then the
//	                destination node's buffer (buffer.Queue, EnqueueCopy);
//	                a message for this node goes to deliver.go at once
//	durable.go      a durable send is written to the spool first and queued
//	                once it is on disk
//	transmit.go     the link's writer of the message's lane takes a batch
//	                from the buffer and writes it on the lane's stream, in
//	                Data and DataBatch frames
//	                ... the transport (QUIC, or TCP + TLS + yamux) ...
//	receive.go      on the peer, the reader of that stream decodes the
//	                frames and drops what was delivered before
//	                (acceptDelivery; recvlane.go keeps, per lane, what was
//	                accepted and what is done)
//	deliver.go      the message goes to its mailbox's client; or it waits
//	                in the node's hold (hold.go) when the client is full or
//	                its group (or its key's partition) has no member here
//	                yet, and the hold's drain (hold_drain.go) hands it on
//	                later, or routes it to the group's member elsewhere
//	                (not in groups.rejoin_grace after the node's start)
//	clientwrite.go  the client's writer goroutine writes it to the socket
//	                (outbuf.go holds what waits)
//	confirm.go      the client confirms what it took (DeliverAck): the
//	                message is done, and the lane's done position moves
//
// The acknowledgement of the done position goes back on the link's control
// stream (control.go: ackLater, controlWriter, then the sender's
// controlReader) and frees the message from the sender's buffer and spool;
// a durable message is acknowledged once written to its client and its
// position is on disk. A send is answered to
// its client through status.go: every outcome of a request is an error
// (nil: done) that statusOf maps to a wire Result.
//
// # Links
//
//	peer.go        one remote node, configured or discovered: its buffer,
//	               its link (if up), the dial loop with backoff
//	handshake.go   both sides of the link handshake (Hello, Welcome, Ready),
//	               the listeners' accept loops, and the resume positions
//	               exchanged in it
//	link.go        one up link: its goroutines, the keepalive, GoAway
//	control.go     the control stream: its writer (acks first), its reader
//	               and the handler of each control frame
//	membership.go  group membership across the link: snapshot, deltas,
//	               digests, and the export policy of groups.export
//	membership_in.go  what a peer publishes: taken within its budget
//	               (groups.max_*_per_peer, snapshot bytes and time) and the
//	               import rules; peerlog.go: warnings about a peer, one per
//	               peer and reason per interval
//	relay.go       a link to a node of another cluster that cannot be
//	               dialled, through another node of its cluster: the
//	               dialer's pipe, the relay's checks and the pair of pipes
//	               it joins, the target's side (TLS over the pipe, then
//	               handleInbound); the link itself is end to end
//	pipes.go       the pipes of a link, multiplexed on one pipes stream
//	               per direction: the table, the bounded outgoing queue
//	               and its writer, the reader; pipes_conn.go: an endpoint
//	               pipe as a net.Conn
//	gatewaymembers.go  the membership of a remote cluster's nodes
//	               through one of its gateways: the choice of the gateway
//	               and the subscription; gatewaymembers_in.go takes what it
//	               sends, gatewayforward.go is the gateway's side
//	convert.go     the one place where wire's numbers meet those of groups
//	               and buffer, checked at compile time
//
// # Finding nodes
//
//	discover.go    remote clusters from seeds (remotes[]): a probe asks a
//	               seed for its cluster's nodes (NodesRequest, Nodes); the
//	               discovery worker applies the lists that probes and links
//	               bring, one at a time
//	nodes.go       this node's view of its cluster (gossip's, or its
//	               configured cluster mates) sent to other clusters on every
//	               link and again when it changes; a peer made for each
//	               node alive in a list or in gossip; a node of a remote
//	               cluster that links first, proved by its CA, adopted
//	gone.go        a node its cluster declared dead or left: its members
//	               leave at once; what waits for it stays for
//	               groups.rejoin_grace, then goes to other members
//	topology.go    which nodes of a remote cluster are linked at all times
//	               (k, by rendezvous hashing) and which on demand, directly
//	               (mesh) or through a gateway (gateway); idle links closed
//
// # Around them
//
//	daemon.go   Daemon: New, Start, Close, the janitor
//	requests.go a local client's requests other than sends: mailboxes,
//	            joins, watches, member lists
//	localserver.go  the local socket's accept loop: the hello deadline,
//	            the cap on connections waiting for it, local.max_clients;
//	            localsock.go: where the socket goes and whose it is
//	admit.go    admission before the handshake (transport.Options.Admit):
//	            a rate per source address, a total rate for addresses no
//	            peer linked from, the trusted addresses; the counting and
//	            logging of refused handshakes. The transport's gate caps
//	            the handshakes in progress and asks QUIC clients for a Retry
//	reload.go   applying a changed config without a restart;
//	            reloadlog.go: log.level applied, log.format refused
//	trust.go    the node certificate, cluster CAs and the revocation list
//	            in the PinSet; links closed for a revoked or expired peer
//	            certificate; certificate expiry gauges and warnings
//	alerts.go   backlog alerts; rates.go: the buffers' fill and drain rates
//	admin.go    the admin listener: /metrics, /v1/status, /v1/links,
//	            /v1/backlog, /healthz (docs/admin-api.md); adminapi.go:
//	            /v1/groups (every group, or one's members) and /readyz
//	adminauth.go  admin.token on that listener: read-only without it,
//	            refusals counted and logged once per interval
//	statuspage.go  the live status page at /ui/ (assets in statuspage/,
//	            embedded) and its access; statuspage_state.go: the page's
//	            /ui/state.json; history.go: each destination's recent
//	            backlog, recorded by the janitor
//	cluster.go  this node's cluster by gossip (package gossip, on
//	            memberlist; gossip.bind): started once the listeners are
//	            up, ClusterView, the gossip metrics; a node of the cluster
//	            declared dead or that left loses its group members here
//	metrics.go  the Prometheus metrics; metrics_init.go: every peer's
//	            and reason's series created at 0
//	dialhint.go the WARN naming the likely cause when a peer refuses
//	            this node's key, once until a link is up
//	wait.go     waiting for a link or for members (the demo, tools, tests)
package daemon
