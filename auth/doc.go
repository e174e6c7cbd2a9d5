// Package auth holds node identities and pinned mutual TLS 1.3.
//
// Every wandistd node owns an Ed25519 key (see GenerateKeyFile and
// LoadKeyFile) and a name, a PeerID made of its cluster and node names.
// Identity.Certificate turns the two into a self-signed certificate whose
// URI SAN carries the name; peers exchange these certificates on every link.
//
// Certificates are never chain-verified. Instead each side pins the public
// keys it accepts for each peer in a PinSet, and the tls.Config returned by
// ServerTLSConfig and ClientTLSConfig checks, at handshake time, that the
// name the peer claims is pinned to the key it presented. A failed check is
// a *RejectError whose Reason says what went wrong; errors.Is(err,
// ErrRejected) matches all of them.
//
// Because the pins are read at handshake time, changing a PinSet (Set,
// Remove, Replace) affects new handshakes at once, without rebuilding the
// TLS configurations; this is how keys are rotated and configs reloaded.
package auth
