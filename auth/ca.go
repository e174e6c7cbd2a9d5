package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"slices"
	"time"
)

// ErrInvalidCA is wrapped by errors about a cluster CA that cannot be used.
var ErrInvalidCA = errors.New("invalid cluster CA")

// caOrgUnit marks the subject of a CA made by NewCA.
const caOrgUnit = "wandist cluster CA"

// CA is a cluster's certificate authority: an Ed25519 key and its
// self-signed CA certificate. It issues node certificates naming
// spiffe://<TrustDomain>/wandist/<Cluster>/<node>; peers that trust the
// certificate accept every node it issued for that cluster.
type CA struct {
	Cert        *x509.Certificate
	Key         ed25519.PrivateKey
	TrustDomain string
	Cluster     string
}

// NewCA makes a CA for cluster in the trust domain td ("" is
// DefaultTrustDomain), valid from an hour before now for validity. Its
// certificate names the cluster in its subject (organisational unit
// "wandist cluster CA", common name "<cluster> wandist CA", organisation
// the trust domain) and is name-constrained to URIs of the trust domain.
func NewCA(td, cluster string, validity time.Duration, now time.Time) (*CA, error) {
	if td == "" {
		td = DefaultTrustDomain
	}
	if err := ValidateTrustDomain(td); err != nil {
		return nil, err
	}
	if err := checkName(cluster); err != nil {
		return nil, fmt.Errorf("%w: cluster name %w", ErrInvalidCA, err)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("%w: validity %v must be positive", ErrInvalidCA, validity)
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{CommonName: cluster + " wandist CA", Organization: []string{td},
			OrganizationalUnit: []string{caOrgUnit, cluster}},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
		PermittedURIDomains:   []string{td},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, TrustDomain: td, Cluster: cluster}, nil
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil // never 0
}

// LoadCA reads a CA written by Save: the certificate (PEM) and its key (a
// key file as LoadKeyFile reads it, so mode 0600). The certificate must be
// a CA certificate made by NewCA for that key.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certs, err := LoadCertificateFile(certFile)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%w %s: holds %d certificates, want the CA's one", ErrInvalidCA, certFile, len(certs))
	}
	key, err := LoadKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("%w %s: not a CA certificate (basic constraints)", ErrInvalidCA, certFile)
	}
	if pub, ok := cert.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("%w: %s is not the certificate of the key in %s", ErrInvalidCA, certFile, keyFile)
	}
	// The subject's organisational units are a SET: their order is lost.
	ou, org := cert.Subject.OrganizationalUnit, cert.Subject.Organization
	i := slices.Index(ou, caOrgUnit)
	if len(ou) != 2 || i < 0 || len(org) != 1 {
		return nil, fmt.Errorf("%w %s: subject %q was not written by `wandistd ca init` (no cluster and trust domain in it)",
			ErrInvalidCA, certFile, cert.Subject.String())
	}
	return &CA{Cert: cert, Key: key, TrustDomain: org[0], Cluster: ou[1-i]}, nil
}

// Save writes the CA certificate to certFile (mode 0644) and its key to
// keyFile (mode 0600), refusing to replace either (the error wraps
// ErrKeyExists or os.ErrExist).
func (ca *CA) Save(certFile, keyFile string) error {
	for _, p := range []string{certFile, keyFile} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s (refusing to overwrite a CA)", ErrKeyExists, p)
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return fmt.Errorf("encoding CA key: %w", err)
	}
	if err := createFile(keyFile, encodeKeyPEM(der)); err != nil {
		return err
	}
	return WriteNewFile(certFile, EncodeCertificatesPEM(ca.Cert), 0o644)
}

// WriteNewFile writes data to a new file at path with mode perm (whatever
// the umask), refusing to replace an existing one.
func WriteNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Issue returns the PEM certificate of node id with public key pub, signed
// by the CA, valid from an hour before now for validity (cut at the CA's
// own expiry): a standard X.509 leaf with key usage digital signature,
// extended key usages server and client auth, a random serial and the URI
// SAN spiffe://<TrustDomain>/wandist/<cluster>/<node>. id must be of the
// CA's cluster.
func (ca *CA) Issue(id PeerID, pub ed25519.PublicKey, validity time.Duration, now time.Time) ([]byte, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if id.Cluster != ca.Cluster {
		return nil, fmt.Errorf("%w: the CA of cluster %s cannot issue for %s", ErrInvalidCA, ca.Cluster, id)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidPublicKey, len(pub), ed25519.PublicKeySize)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("%w: validity %v must be positive", ErrInvalidCA, validity)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.Node + "." + id.Cluster, Organization: []string{ca.TrustDomain}},
		URIs:         []*url.URL{SPIFFEID(ca.TrustDomain, id)},
		NotBefore:    now.Add(-certBackdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issuing certificate for %s: %w", id, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: certPEMType, Bytes: der}), nil
}
