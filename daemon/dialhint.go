package daemon

import (
	"crypto/tls"
	"fmt"
	"net"
	"reflect"

	"github.com/quic-go/quic-go"

	"github.com/wandist/wandist/auth"
)

// A dial the far side refuses for this node's key or certificate fails
// with the TLS alert it sent, after the handshake; the dialer names the
// likely cause once, at WARN, and the retries at INFO.

// TLS alerts a server sends when it refuses the client's certificate
// (RFC 8446, section 6.2).
const (
	alertBadCertificate         = 42
	alertUnsupportedCertificate = 43
	alertCertificateRevoked     = 44
	alertCertificateExpired     = 45
	alertCertificateUnknown     = 46
	alertUnknownCA              = 48
	alertAccessDenied           = 49
	alertCertificateRequired    = 116
)

// quicCryptoErrorBase is QUIC's error code of TLS alert 0 (RFC 9001, 4.8).
const quicCryptoErrorBase = 0x100

// keyRefusal returns the TLS alert the far side sent err's dial if it
// refused this node's certificate (ok false otherwise).
func keyRefusal(err error) (alert uint8, ok bool) {
	walkErrors(err, func(e error) bool {
		var code uint8
		switch e := e.(type) {
		case *net.OpError: // TLS over TCP: the peer's alert as crypto/tls reports it
			if v := reflect.ValueOf(e.Err); e.Op == "remote error" && e.Err != nil && v.Kind() == reflect.Uint8 {
				code = uint8(v.Uint())
			}
		case tls.AlertError:
			code = uint8(e)
		case *quic.TransportError:
			if e.Remote && e.ErrorCode.IsCryptoError() {
				code = uint8(e.ErrorCode - quicCryptoErrorBase)
			}
		}
		switch code {
		case alertBadCertificate, alertUnsupportedCertificate, alertCertificateRevoked, alertCertificateExpired,
			alertCertificateUnknown, alertUnknownCA, alertAccessDenied, alertCertificateRequired:
			alert, ok = code, true
		}
		return ok
	})
	return alert, ok
}

// walkErrors calls fn on err and every error it wraps, depth first, until
// fn returns true.
func walkErrors(err error, fn func(error) bool) bool {
	if err == nil {
		return false
	}
	if fn(err) {
		return true
	}
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		return walkErrors(e.Unwrap(), fn)
	case interface{ Unwrap() []error }:
		for _, w := range e.Unwrap() {
			if walkErrors(w, fn) {
				return true
			}
		}
	}
	return false
}

// keyRefusalHint says what likely made the peer refuse this node for alert.
func (p *peer) keyRefusalHint(alert uint8) string {
	self := p.d.cfg.Cluster + "/" + p.d.cfg.Node
	var cause string
	switch alert {
	case alertUnknownCA:
		cause = fmt.Sprintf("does it trust the CA of %s's certificate (trust.ca_files, or remotes[].ca_files for cluster %s)?", self, p.d.cfg.Cluster)
	case alertCertificateRevoked:
		cause = fmt.Sprintf("has it revoked %s's certificate (trust.revoked_file)?", self)
	case alertCertificateExpired:
		cause = fmt.Sprintf("has %s's certificate expired, or is a clock wrong?", self)
	default:
		cause = fmt.Sprintf("is %s's public key in its peers list (peers[].public_key) or its CA in its trust (trust.ca_files, remotes[].ca_files)?", self)
	}
	return fmt.Sprintf("%s refused our key: %s (%v)", p.nodeName(), cause, tls.AlertError(alert))
}

// logDialFailure logs a failed dial. The first refusal of this node's key
// since the last link up (warned true) is a WARN naming the likely cause;
// the retries, and other failures, are INFO. It returns the new warned.
func (p *peer) logDialFailure(err error, warned bool) bool {
	alert, refused := keyRefusal(err)
	if !refused {
		p.d.log.Info("dial failed", "peer", p.nodeName(), "address", p.address(), "err", err)
		return warned
	}
	hint := p.keyRefusalHint(alert)
	if warned {
		p.d.log.Info("dial failed", "peer", p.nodeName(), "address", p.address(), "err", err, "hint", hint)
		return true
	}
	p.d.log.Warn(hint, "peer", p.nodeName(), "address", p.address(), "our_public_key", auth.FormatPublicKey(p.d.id.Public()),
		"note", "logged once until a link is up; the retries are logged at INFO", "err", err)
	return true
}
