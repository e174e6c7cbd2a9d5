package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"
)

// Errors about identities and certificates.
var (
	// ErrInvalidKey: an Identity's private key is not a usable Ed25519 key.
	ErrInvalidKey = errors.New("invalid Ed25519 private key")
	// ErrInvalidCertificate: a certificate does not carry a wandist
	// identity: no or a malformed wandist:// URI, a key other than Ed25519,
	// or a signature not made by its own key.
	ErrInvalidCertificate = errors.New("invalid wandist certificate")
)

// URIScheme is the scheme of the URI SAN naming a node in its certificate:
// wandist://<cluster>/<node>.
const URIScheme = "wandist"

// Certificate validity; certificates are pinned by key, so a long life only
// spares operators from renewals, and the back-dating tolerates clock skew.
const (
	certBackdate = time.Hour
	certLifetime = 10 * 365 * 24 * time.Hour
)

// Identity is this node: its name, its private key and, optionally, a
// certificate chain issued for them by its cluster's CA.
type Identity struct {
	ID  PeerID
	Key ed25519.PrivateKey
	// Chain, if not empty, is the node's certificate chain (DER, leaf
	// first; see LoadCertificateFile), presented instead of a self-signed
	// certificate.
	Chain [][]byte
}

// Public returns the public half of the identity's key, or nil if Key is
// not an Ed25519 private key.
func (id Identity) Public() ed25519.PublicKey {
	if len(id.Key) != ed25519.PrivateKeySize {
		return nil
	}
	return id.Key.Public().(ed25519.PublicKey)
}

// Certificate returns the certificate the identity presents, for use in a
// tls.Config. With a Chain it is that chain, once checked: the leaf's key
// must be the identity's key and its URI SAN must name the identity (in
// either form), else the error wraps ErrInvalidCertificate.
//
// Without one it is a fresh self-signed certificate carrying the URI SAN
// wandist://<cluster>/<node> and the common name "<node>.<cluster>", valid
// from an hour ago for ten years. Peers never verify its chain; they pin
// its key.
func (id Identity) Certificate() (tls.Certificate, error) {
	if len(id.Chain) > 0 {
		return id.chainCertificate()
	}
	if err := id.ID.Validate(); err != nil {
		return tls.Certificate{}, fmt.Errorf("identity: %w", err)
	}
	if len(id.Key) != ed25519.PrivateKeySize {
		return tls.Certificate{}, fmt.Errorf("identity %s: %w: %d bytes, want %d",
			id.ID, ErrInvalidKey, len(id.Key), ed25519.PrivateKeySize)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity %s: certificate serial: %w", id.ID, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)), // never 0
		Subject:               pkix.Name{CommonName: id.ID.Node + "." + id.ID.Cluster},
		URIs:                  []*url.URL{peerURI(id.ID)},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.Public(), id.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity %s: creating certificate: %w", id.ID, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity %s: parsing own certificate: %w", id.ID, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.Key, Leaf: leaf}, nil
}

// peerURI returns wandist://<cluster>/<node>; url.URL escapes each part
// when the URI is written (a no-op for names that pass PeerID.Validate).
func peerURI(p PeerID) *url.URL {
	return &url.URL{Scheme: URIScheme, Host: p.Cluster, Path: "/" + p.Node}
}

// PeerFromCertificate returns the identity a certificate claims and its
// Ed25519 public key; see PeerFromCertificateWithDomain, of which it drops
// the trust domain.
func PeerFromCertificate(cert *x509.Certificate) (PeerID, ed25519.PublicKey, error) {
	id, _, pub, err := PeerFromCertificateWithDomain(cert)
	return id, pub, err
}

// PeerFromCertificateWithDomain returns the identity a certificate claims,
// the SPIFFE trust domain it names it in, and its Ed25519 public key.
//
// The certificate carries exactly one identity URI SAN: either
// spiffe://<trust domain>/wandist/<cluster>/<node> (issued by a cluster CA;
// its chain is checked against the anchors by the PinSet, not here) or the
// self-signed wandist://<cluster>/<node>, whose trust domain is "" and
// whose signature by its own key is checked here, so that whoever made it
// held the key. Pins are not checked. Errors wrap ErrInvalidCertificate.
func PeerFromCertificateWithDomain(cert *x509.Certificate) (PeerID, string, ed25519.PublicKey, error) {
	if cert == nil {
		return PeerID{}, "", nil, fmt.Errorf("%w: no certificate", ErrInvalidCertificate)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return PeerID{}, "", nil, fmt.Errorf("%w: public key is %s, want Ed25519",
			ErrInvalidCertificate, cert.PublicKeyAlgorithm)
	}
	var found []*url.URL
	for _, u := range cert.URIs {
		if strings.EqualFold(u.Scheme, URIScheme) || strings.EqualFold(u.Scheme, SPIFFEScheme) {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return PeerID{}, "", nil, fmt.Errorf("%w: no %s:// or %s:// URI SAN (certificate %q, key %s)",
			ErrInvalidCertificate, SPIFFEScheme, URIScheme, cert.Subject.CommonName, FormatPublicKey(pub))
	case 1:
	default:
		return PeerID{}, "", nil, fmt.Errorf("%w: %d identity URI SANs, want exactly one (key %s)",
			ErrInvalidCertificate, len(found), FormatPublicKey(pub))
	}
	u := found[0]
	if strings.EqualFold(u.Scheme, SPIFFEScheme) {
		td, id, err := peerFromSPIFFE(u)
		if err != nil {
			return PeerID{}, "", nil, fmt.Errorf("%w: URI SAN %q: %w (key %s)",
				ErrInvalidCertificate, u.String(), err, FormatPublicKey(pub))
		}
		return id, td, pub, nil
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return PeerID{}, "", nil, fmt.Errorf("%w: not self-signed by its key %s: %v",
			ErrInvalidCertificate, FormatPublicKey(pub), err)
	}
	id, err := peerFromURI(u)
	if err != nil {
		return PeerID{}, "", nil, fmt.Errorf("%w: URI SAN %q: %w (key %s)",
			ErrInvalidCertificate, u.String(), err, FormatPublicKey(pub))
	}
	return id, "", pub, nil
}

// peerFromURI reads the PeerID in wandist://<cluster>/<node>.
func peerFromURI(u *url.URL) (PeerID, error) {
	if u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return PeerID{}, errors.New("want exactly wandist://<cluster>/<node>")
	}
	node, ok := strings.CutPrefix(u.Path, "/")
	if !ok || strings.Contains(node, "/") {
		return PeerID{}, errors.New("path must be /<node>")
	}
	id := PeerID{Cluster: u.Host, Node: node}
	if err := id.Validate(); err != nil {
		return PeerID{}, err
	}
	return id, nil
}
