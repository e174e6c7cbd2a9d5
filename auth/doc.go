// Package auth holds node identities and mutual TLS 1.3 with pinned keys or
// cluster CAs.
//
// Every wandistd node owns an Ed25519 key (see GenerateKeyFile and
// LoadKeyFile) and a name, a PeerID made of its cluster and node names.
// Identity.Certificate presents either a certificate chain issued for the
// two by the node's cluster CA (URI SAN
// spiffe://<trust domain>/wandist/<cluster>/<node>; see CA, NewCA, Issue
// and LoadCertificateFile), or a self-signed certificate whose URI SAN is
// wandist://<cluster>/<node>; peers exchange these certificates on every
// link.
//
// A PinSet holds the trust anchors: public keys pinned per peer, and per
// cluster the CA certificates that vouch for any node of it, plus a
// revocation list of keys and serial numbers. The tls.Config returned by
// ServerTLSConfig, ClientTLSConfig and ClientTLSConfigCluster checks at
// handshake time (PinSet.CheckChain) that the peer is not revoked and that
// either the name it claims is pinned to the key it presented, or its chain
// leads to a CA of the cluster it claims, in this node's trust domain. A
// self-signed certificate is accepted by pins only. A failed check is a
// *RejectError whose Reason says what went wrong; errors.Is(err,
// ErrRejected) matches all of them.
//
// Because the PinSet is read at handshake time, changing it (Set, Remove,
// Replace, SetAnchors, ReplaceAnchors, SetRevoked) affects new handshakes
// at once, without rebuilding the TLS configurations; this is how keys and
// CAs are rotated and configs reloaded.
package auth
