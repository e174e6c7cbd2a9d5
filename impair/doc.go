// Package impair applies network faults in user space, for tests, the
// benchmarks and the chaos suite on kernels without netem: delay, jitter,
// reordering, loss, duplication, corruption, a rate cap and blackholes
// (packets vanish: no FIN, no RST, no ICMP).
//
// Three paths share one fault model (Faults, set per Direction) and count
// every fault they apply (Stats):
//
//   - UDPRelay forwards datagrams from its clients to one target;
//   - TCPRelay forwards TCP connections to one target (a byte stream can
//     only be delayed, rate-capped, corrupted or held, not reordered);
//   - PacketForwarder impairs IP packets read from a TUN device and writes
//     them back, so that a router namespace applies netem-like faults to
//     every protocol at the packet level (Linux).
package impair

import "errors"

// ErrBadFaults is wrapped by the errors about invalid Faults.
var ErrBadFaults = errors.New("impair: invalid faults")
