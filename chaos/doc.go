// Package chaos proves wandist under injected faults with real processes
// and real sockets. Two clusters, each a network namespace with a wandistd
// daemon, are joined by veth pairs through a third "WAN" namespace that
// routes between them and applies the faults:
//
//   - netem on the WAN's veths where the kernel has it;
//   - otherwise a user-space packet forwarder (impair.PacketForwarder on a
//     TUN device, with policy routing sending all transit traffic through
//     it) for delay, jitter, reordering, duplication and corruption, at the
//     packet level, for QUIC and TCP alike;
//   - nftables in the WAN for loss (numgen), partitions (one-way drop, or
//     two-way reject with TCP RST and ICMP unreachable) and blackholes
//     (silent drop: no FIN, no RST; the links go half-open);
//   - tbf on the WAN's veths for rate caps.
//
// Every fault path counts what it did, so each result shows the fault's
// measured effect. Other scenarios kill -9 and restart a daemon (with its
// spool), stop the consumer process (SIGSTOP), or put the spool on a tiny
// tmpfs.
//
// Producers (Go SDK clients of the sending daemon) send sequence-numbered,
// CRC-checked messages at a fixed rate in every delivery mode
// (at-most-once, reliable on both lanes, durable, reliable with a TTL); a
// `wandistd sub` process receives; Check accounts for every message (sent,
// refused busy, delivered, lost, duplicated, out of order, expired, from
// the heal to the first delivery and to a drained backlog), and the daemons'
// peak memory is compared with their configured bound.
//
// TestMultiCluster runs many nodes (MultiTopology): 3 clusters of 4
// nodes, a namespace per node, a bridged LAN per cluster, the faults per
// pair of clusters in one WAN namespace; the daemons' configs come from
// one function of the layout (MeshConfig); reliable flows from one
// cluster to groups served in the two others are accounted for over all
// their consumers (CheckSpread) through a kill -9 of a receiving node and
// a cut of a cluster (docs/chaos.md, "Many nodes").
//
// TestQUICLossBlackouts runs the loss-blackouts scenario (5 % loss each
// way, 50 ms RTT, a 1 s blackout every 5 s) over a QUIC link and a TCP link
// in one run and requires QUIC's send→delivery p50 and p99, and its time
// from the end of the faults to the last delivery, within 2× of TCP's
// (docs/chaos.md, "QUIC against TCP under loss and blackouts"); both
// profiles run it.
//
// How to run (as root; namespaces, /dev/net/tun and nftables are needed,
// and nftables is installed from Debian's packages when CI=true):
//
//	go test ./chaos                         # short profile, a few minutes
//	go test ./chaos -run TestChaos -chaos.profile=full -timeout 90m -v
//	                                        # full matrix: rewrites docs/chaos.md
//
// Flags: -chaos.only=NAME,... runs single scenarios (of the full matrix),
// -chaos.transports=quic,tcp, -chaos.out=FILE writes the Markdown report
// elsewhere, -chaos.keep keeps the run directory (configs, daemon logs,
// trace.csv of every send and delivery, final metrics). Without root or
// namespaces the tests skip, saying why. Everything a run creates
// (namespaces, processes, mounts, directories) is removed at the end, on
// failure and on SIGINT/SIGTERM; leftovers of runs that died are removed at
// the start of the next.
package chaos
