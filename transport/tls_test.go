package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"
)

const testALPN = "wandist/1"

// identity is a self-signed Ed25519 certificate and its pin.
type identity struct {
	cert tls.Certificate
	pin  [32]byte // SHA-256 of the SubjectPublicKeyInfo
}

func newIdentity(t testing.TB, name string) identity {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return identity{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pin:  sha256.Sum256(leaf.RawSubjectPublicKeyInfo),
	}
}

var errPinMismatch = errors.New("test: peer certificate not pinned")

// pinCheck accepts only peers whose key is among pins.
func pinCheck(pins ...[32]byte) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("test: no peer certificate")
		}
		got := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
		for _, p := range pins {
			if got == p {
				return nil
			}
		}
		return errPinMismatch
	}
}

// serverTLS is a listener config that requires a client certificate pinned
// to one of pins.
func serverTLS(id identity, pins ...[32]byte) *tls.Config {
	return &tls.Config{
		Certificates:       []tls.Certificate{id.cert},
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true,
		VerifyConnection:   pinCheck(pins...),
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{testALPN},
	}
}

// clientTLS is a dialer config that pins the server to one of pins.
func clientTLS(id identity, pins ...[32]byte) *tls.Config {
	return &tls.Config{
		DynamicRecordSizingDisabled: true, // as auth's configs
		Certificates:                []tls.Certificate{id.cert},
		InsecureSkipVerify:          true,
		VerifyConnection:            pinCheck(pins...),
		MinVersion:                  tls.VersionTLS13,
		NextProtos:                  []string{testALPN},
	}
}
