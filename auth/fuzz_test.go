package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"
)

// The decoders of this package that read untrusted text or bytes: public
// keys and peer ids (config files), key files, and the certificates that
// peers present in the TLS handshake.

func FuzzParsePublicKey(f *testing.F) {
	pub := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	for _, s := range []string{FormatPublicKey(pub), " " + FormatPublicKey(pub) + "\n", "ed25519:", "ed25519:AAAA", "rsa:AAAA", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		if len(k) != ed25519.PublicKeySize {
			t.Fatalf("key of %d bytes accepted", len(k))
		}
		again, err := ParsePublicKey(FormatPublicKey(k))
		if err != nil || !again.Equal(k) {
			t.Fatalf("formatted key does not parse back: %v", err)
		}
	})
}

func FuzzParsePeerID(f *testing.F) {
	for _, s := range []string{"east/east-1", " a.b/c_d ", "a/b/c", "/x", "x/", "a..b/c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParsePeerID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPeerID) {
				t.Fatalf("error %v does not wrap ErrInvalidPeerID", err)
			}
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("parsed id %q does not validate: %v", id, err)
		}
		if again, err := ParsePeerID(id.String()); err != nil || again != id {
			t.Fatalf("%q does not parse back: %v %v", id, again, err)
		}
		if got := peerURI(id).String(); got != "wandist://"+id.Cluster+"/"+id.Node {
			t.Fatalf("URI of %v is %q: the name needs escaping", id, got)
		}
	})
}

// FuzzParseKeyFile feeds arbitrary key file contents to the key file
// parser.
func FuzzParseKeyFile(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	good := pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Bytes: der})
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	for _, b := range [][]byte{
		good,
		append(good, "trailing"...),
		pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Bytes: ecDER}),
		pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		[]byte("not a key"),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := parseKeyPEM("fuzz.key", data)
		if err != nil {
			if !errors.Is(err, ErrInvalidKeyFile) {
				t.Fatalf("error %v does not wrap ErrInvalidKeyFile", err)
			}
			return
		}
		if len(k) != ed25519.PrivateKeySize {
			t.Fatalf("key of %d bytes accepted", len(k))
		}
	})
}

// FuzzPeerFromCertificate feeds arbitrary DER to the certificate check a
// peer's handshake goes through.
func FuzzPeerFromCertificate(f *testing.F) {
	id := Identity{ID: PeerID{Cluster: "east", Node: "east-1"}, Key: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))}
	cert, err := id.Certificate()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cert.Certificate[0])
	// Variants: no URI, two URIs, a URI with a port, an ECDSA key.
	for _, uris := range [][]string{nil, {"wandist://a/b", "wandist://c/d"}, {"wandist://a:1/b"}, {"WANDIST://a/b/c"}} {
		f.Add(selfSigned(f, uris, id.Public(), id.Key).Raw)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(selfSigned(f, []string{"wandist://a/b"}, ec.Public(), ec).Raw)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		got, key, err := PeerFromCertificate(c)
		if err != nil {
			if !errors.Is(err, ErrInvalidCertificate) {
				t.Fatalf("error %v does not wrap ErrInvalidCertificate", err)
			}
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("certificate accepted with an invalid name: %v", err)
		}
		if pub, ok := c.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(key) {
			t.Fatal("returned key is not the certificate's")
		}
	})
}

// FuzzParseCertificatesPEM feeds arbitrary text to the certificate file
// parser: it never panics, and what it accepts is certificates only.
func FuzzParseCertificatesPEM(f *testing.F) {
	ca, err := NewCA("", "east", time.Hour, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	good := EncodeCertificatesPEM(ca.Cert)
	f.Add(good)
	f.Add(append(append([]byte{}, good...), good...))
	f.Add(append([]byte("x\n"), good...))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificatesPEM(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidCertificate) {
				t.Fatalf("error %v does not wrap ErrInvalidCertificate", err)
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("no certificates and no error")
		}
	})
}
