package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"
)

func TestCertificateRoundTrip(t *testing.T) {
	id := newIdentity(t, "eu-west", "node_1.a")
	tc, err := id.Certificate()
	if err != nil {
		t.Fatalf("Certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(tc.Certificate[0])
	if err != nil {
		t.Fatalf("parsing the certificate: %v", err)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "wandist://eu-west/node_1.a" {
		t.Fatalf("URI SANs = %v, want [wandist://eu-west/node_1.a]", cert.URIs)
	}
	if cert.Subject.CommonName != "node_1.a.eu-west" {
		t.Fatalf("CN = %q, want %q", cert.Subject.CommonName, "node_1.a.eu-west")
	}
	now := time.Now()
	if !cert.NotBefore.Before(now.Add(-50*time.Minute)) || !cert.NotAfter.After(now.AddDate(9, 11, 0)) {
		t.Fatalf("validity %v..%v, want from about an hour ago for about ten years", cert.NotBefore, cert.NotAfter)
	}
	if cert.SerialNumber.Sign() <= 0 {
		t.Fatalf("serial %v, want positive", cert.SerialNumber)
	}
	peer, pub, err := PeerFromCertificate(cert)
	if err != nil {
		t.Fatalf("PeerFromCertificate: %v", err)
	}
	if peer != id.ID {
		t.Fatalf("PeerFromCertificate id = %v, want %v", peer, id.ID)
	}
	if !pub.Equal(id.Public()) {
		t.Fatal("PeerFromCertificate returned another key")
	}
	if tc.Leaf == nil || !tc.Leaf.Equal(cert) {
		t.Fatal("tls.Certificate.Leaf is not the parsed certificate")
	}

	other, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if other.Leaf.SerialNumber.Cmp(cert.SerialNumber) == 0 {
		t.Fatal("two certificates got the same serial")
	}
}

func TestCertificateRejectsBadIdentity(t *testing.T) {
	good := newIdentity(t, "east", "east-1")
	if _, err := (Identity{ID: PeerID{Cluster: "east", Node: "a/b"}, Key: good.Key}).Certificate(); !errors.Is(err, ErrInvalidPeerID) {
		t.Errorf("Certificate with bad node name: %v, want ErrInvalidPeerID", err)
	}
	if _, err := (Identity{ID: good.ID}).Certificate(); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Certificate without key: %v, want ErrInvalidKey", err)
	}
	if pub := (Identity{ID: good.ID}).Public(); pub != nil {
		t.Errorf("Public() without key = %x, want nil", pub)
	}
}

// selfSigned makes a certificate with the given URIs, signed by signer's key
// but carrying pub.
func selfSigned(t testing.TB, uris []string, pub, signer any) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestPeerFromCertificateErrors(t *testing.T) {
	id := newIdentity(t, "east", "east-1")
	other := newIdentity(t, "east", "east-2")
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]*x509.Certificate{
		"nil":           nil,
		"no URI":        selfSigned(t, nil, id.Public(), id.Key),
		"other scheme":  selfSigned(t, []string{"spiffe://east/east-1"}, id.Public(), id.Key),
		"two URIs":      selfSigned(t, []string{"wandist://east/east-1", "wandist://east/east-2"}, id.Public(), id.Key),
		"no node":       selfSigned(t, []string{"wandist://east"}, id.Public(), id.Key),
		"deep path":     selfSigned(t, []string{"wandist://east/a/b"}, id.Public(), id.Key),
		"query":         selfSigned(t, []string{"wandist://east/east-1?x=1"}, id.Public(), id.Key),
		"port":          selfSigned(t, []string{"wandist://east:1/east-1"}, id.Public(), id.Key),
		"bad node name": selfSigned(t, []string{"wandist://east/-x"}, id.Public(), id.Key),
		"ECDSA key":     selfSigned(t, []string{"wandist://east/east-1"}, &ec.PublicKey, ec),
		"foreign sig":   selfSigned(t, []string{"wandist://east/east-1"}, id.Public(), other.Key),
	}
	for name, cert := range cases {
		t.Run(name, func(t *testing.T) {
			peer, pub, err := PeerFromCertificate(cert)
			if !errors.Is(err, ErrInvalidCertificate) {
				t.Fatalf("PeerFromCertificate = %v, %x, %v; want ErrInvalidCertificate", peer, pub, err)
			}
			t.Log(err)
		})
	}
}
