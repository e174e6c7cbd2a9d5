package auth

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

// Errors about TLS configurations and connections.
var (
	// ErrInvalidTLSConfig: ServerTLSConfig or ClientTLSConfig got unusable
	// arguments.
	ErrInvalidTLSConfig = errors.New("invalid TLS configuration")
	// ErrNoProtocol: the handshake agreed on no ALPN protocol.
	ErrNoProtocol = errors.New("no application protocol negotiated")
)

// ServerName is the SNI name clients send; certificates are pinned or
// verified against cluster CAs, never matched against it.
const ServerName = "wandist"

// ServerTLSConfig returns the TLS 1.3 configuration of the accepting side of
// a link. It presents id's certificate, requires one from the client, and
// accepts the client only if pins vouches for it (PinSet.CheckChain): the
// key it presents is pinned for the name it claims, or, for a name with no
// pins, its certificate chains to a CA trusted for the cluster it claims. On rejection, including a client without a certificate
// (ReasonNoCertificate), it calls onReject (if not nil) and the handshake
// fails with the *RejectError. Session tickets are off: no resumption, no
// 0-RTT; every connection proves its key afresh.
//
// alpn lists the application protocols offered, in order of preference; at
// least one is required and the handshake fails if none is agreed on.
func ServerTLSConfig(id Identity, pins *PinSet, alpn []string, onReject func(*RejectError)) (*tls.Config, error) {
	cfg, err := baseConfig(id, pins, alpn)
	if err != nil {
		return nil, err
	}
	// The client's certificate is requested, not required by crypto/tls:
	// the verifier refuses a client without one, so that the refusal has
	// its own reason (ReasonNoCertificate) instead of a bare TLS error.
	cfg.ClientAuth = tls.RequestClientCert
	cfg.SessionTicketsDisabled = true // every link runs a full handshake and a fresh pin check
	cfg.VerifyConnection = verifier(pins, anyPeer, x509.ExtKeyUsageClientAuth, onReject)
	return cfg, nil
}

// ClientTLSConfig returns the TLS 1.3 configuration of the dialling side of
// a link to the peer expect. It presents id's certificate and accepts the
// server only if it claims to be expect (else ReasonWrongPeer) and pins
// vouches for it (pinned key, or a chain to a CA of expect's cluster). On rejection it calls onReject (if not nil)
// and the handshake fails with the *RejectError.
//
// crypto/tls's own chain verification is off (InsecureSkipVerify): the
// PinSet's check replaces it. alpn is as for ServerTLSConfig.
func ClientTLSConfig(id Identity, pins *PinSet, expect PeerID, alpn []string, onReject func(*RejectError)) (*tls.Config, error) {
	if err := expect.Validate(); err != nil {
		return nil, fmt.Errorf("%w: expected peer: %w", ErrInvalidTLSConfig, err)
	}
	cfg, err := baseConfig(id, pins, alpn)
	if err != nil {
		return nil, err
	}
	cfg.ServerName = ServerName
	cfg.InsecureSkipVerify = true // chain verification is done by VerifyConnection
	cfg.VerifyConnection = verifier(pins, func(claimed PeerID) string {
		if claimed != expect {
			return fmt.Sprintf("dialled %s but reached %s", expect, claimed)
		}
		return ""
	}, x509.ExtKeyUsageServerAuth, onReject)
	return cfg, nil
}

// ClientTLSConfigCluster is ClientTLSConfig for dialling any node of
// cluster, e.g. a seed whose node name is unknown: the server is accepted if
// it is a node of cluster (else ReasonWrongPeer) verified by cluster's
// anchors or by its pins.
func ClientTLSConfigCluster(id Identity, pins *PinSet, cluster string, alpn []string, onReject func(*RejectError)) (*tls.Config, error) {
	if err := checkName(cluster); err != nil {
		return nil, fmt.Errorf("%w: expected cluster: cluster name %w", ErrInvalidTLSConfig, err)
	}
	cfg, err := baseConfig(id, pins, alpn)
	if err != nil {
		return nil, err
	}
	cfg.ServerName = ServerName
	cfg.InsecureSkipVerify = true // chain verification is done by VerifyConnection
	cfg.VerifyConnection = verifier(pins, func(claimed PeerID) string {
		if claimed.Cluster != cluster {
			return fmt.Sprintf("dialled a node of cluster %s but reached %s", cluster, claimed)
		}
		return ""
	}, x509.ExtKeyUsageServerAuth, onReject)
	return cfg, nil
}

// anyPeer accepts any claimed name (servers).
func anyPeer(PeerID) string { return "" }

// baseConfig holds what both sides share.
func baseConfig(id Identity, pins *PinSet, alpn []string) (*tls.Config, error) {
	if pins == nil {
		return nil, fmt.Errorf("%w: no PinSet given", ErrInvalidTLSConfig)
	}
	if len(alpn) == 0 {
		return nil, fmt.Errorf("%w: at least one ALPN protocol is required", ErrInvalidTLSConfig)
	}
	for i, p := range alpn {
		if p == "" || len(p) > 255 {
			return nil, fmt.Errorf("%w: ALPN protocol %d (%q) must be 1 to 255 bytes long", ErrInvalidTLSConfig, i, p)
		}
	}
	cert, err := id.Certificate()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTLSConfig, err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   slices.Clone(alpn),
		// A link is a long-lived bulk pipe: full-size records from the
		// first byte. (Small records at the start only help a browser
		// render early; here they cost a record and a system call each
		// for a new link's first 128 KiB, its redelivery burst.)
		DynamicRecordSizingDisabled: true,
	}, nil
}

// verifier returns the VerifyConnection callback. wrong says what is wrong
// with the name the peer claims ("" if nothing is): the dialer's
// expectation. usage is the extended key usage a CA-verified peer needs.
func verifier(pins *PinSet, wrong func(PeerID) string, usage x509.ExtKeyUsage, onReject func(*RejectError)) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		claimed, key, rej := peerFromState(cs)
		if rej == nil {
			if why := wrong(claimed); why != "" {
				rej = newReject(ReasonWrongPeer, claimed, key, fmt.Sprintf("%s (key %s)", why, FormatPublicKey(key)))
			}
		}
		if rej == nil {
			_, _, rej = pins.checkChain(cs.PeerCertificates, usage)
		}
		if rej != nil {
			if onReject != nil {
				onReject(rej)
			}
			return rej
		}
		if cs.NegotiatedProtocol == "" {
			return fmt.Errorf("%w with %s", ErrNoProtocol, claimed)
		}
		return nil
	}
}

// PeerFromConnectionState returns the identity and key the peer of a
// completed handshake presented. Errors are *RejectError values with
// ReasonNoCertificate or ReasonBadCertificate.
func PeerFromConnectionState(cs tls.ConnectionState) (PeerID, ed25519.PublicKey, error) {
	id, key, rej := peerFromState(cs)
	if rej != nil {
		return PeerID{}, nil, rej
	}
	return id, key, nil
}

func peerFromState(cs tls.ConnectionState) (PeerID, ed25519.PublicKey, *RejectError) {
	if len(cs.PeerCertificates) == 0 {
		return PeerID{}, nil, newReject(ReasonNoCertificate, PeerID{}, nil, "peer presented no certificate")
	}
	cert := cs.PeerCertificates[0]
	id, key, err := PeerFromCertificate(cert)
	if err != nil {
		pub, _ := cert.PublicKey.(ed25519.PublicKey)
		rej := newReject(ReasonBadCertificate, PeerID{}, pub, err.Error())
		rej.Err = err
		return PeerID{}, nil, rej
	}
	return id, key, nil
}
