package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
)

// ErrRejected matches every *RejectError with errors.Is.
var ErrRejected = errors.New("peer rejected")

// Reason says why a peer was rejected. The values are stable and short, fit
// for metric labels.
type Reason string

// Rejection reasons.
const (
	// ReasonNoCertificate: the peer presented no certificate.
	ReasonNoCertificate Reason = "no_certificate"
	// ReasonBadCertificate: the peer's certificate carries no usable
	// wandist identity (see PeerFromCertificate).
	ReasonBadCertificate Reason = "bad_certificate"
	// ReasonUnknownPeer: no keys are pinned for the name the peer claims.
	ReasonUnknownPeer Reason = "unknown_peer"
	// ReasonUnpinnedKey: the peer's key is not pinned for the name it claims.
	ReasonUnpinnedKey Reason = "unpinned_key"
	// ReasonNameMismatch: the peer's key is pinned, but for another peer
	// than the one it claims to be.
	ReasonNameMismatch Reason = "name_mismatch"
	// ReasonWrongPeer: a dialer reached a node other than the one it dialled.
	ReasonWrongPeer Reason = "wrong_peer"
	// ReasonRevoked: the peer's key, or the serial of a certificate of its
	// chain, is on the revocation list.
	ReasonRevoked Reason = "revoked"
	// ReasonExpired: the peer's CA-issued certificate (or a CA of its
	// chain) is expired or not yet valid.
	ReasonExpired Reason = "expired"
	// ReasonUntrustedCA: the peer's certificate does not chain to a CA
	// trusted for the cluster it claims.
	ReasonUntrustedCA Reason = "untrusted_ca"
	// ReasonWrongTrustDomain: the peer's certificate names another SPIFFE
	// trust domain than this node's.
	ReasonWrongTrustDomain Reason = "wrong_trust_domain"
)

// Reasons lists every Reason, for pre-initialising metric labels.
var Reasons = []Reason{ReasonNoCertificate, ReasonBadCertificate, ReasonUnknownPeer, ReasonUnpinnedKey,
	ReasonNameMismatch, ReasonWrongPeer, ReasonRevoked, ReasonExpired, ReasonUntrustedCA, ReasonWrongTrustDomain}

// RejectError describes a peer refused during the TLS handshake. It holds
// public data only: the claimed name and public key (and, in Detail, the
// certificate's subject, serial and validity).
//
// A server decides before the client has proven that it holds the key in
// its certificate, so a RejectError reports what the peer claimed.
type RejectError struct {
	Reason  Reason
	Claimed PeerID // the identity the peer claimed; zero if unknown
	Key     string // the peer's public key as FormatPublicKey writes it; "" if none
	Detail  string // what happened, in words; Error builds one if empty
	Err     error  // the underlying error, if any (for ReasonBadCertificate)
}

// Error returns e.g. "peer rejected (unpinned_key): east/east-1 presented
// key ed25519:... which is not pinned for it".
func (e *RejectError) Error() string {
	detail := e.Detail
	if detail == "" {
		detail = e.defaultDetail()
	}
	return "peer rejected (" + string(e.Reason) + "): " + detail
}

func (e *RejectError) defaultDetail() string {
	switch {
	case e.Err != nil:
		return e.Err.Error()
	case e.Claimed != PeerID{} && e.Key != "":
		return fmt.Sprintf("%s with key %s", e.Claimed, e.Key)
	case e.Claimed != PeerID{}:
		return e.Claimed.String()
	case e.Key != "":
		return "peer with key " + e.Key
	default:
		return "no details"
	}
}

// Is reports whether target is ErrRejected.
func (e *RejectError) Is(target error) bool { return target == ErrRejected }

// Unwrap returns the underlying error, if any.
func (e *RejectError) Unwrap() error { return e.Err }

// newReject builds a RejectError; key may be nil.
func newReject(reason Reason, claimed PeerID, key ed25519.PublicKey, detail string) *RejectError {
	e := &RejectError{Reason: reason, Claimed: claimed, Detail: detail}
	if key != nil {
		e.Key = FormatPublicKey(key)
	}
	return e
}
