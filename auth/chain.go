package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
)

// certPEMType is the PEM block type of a certificate.
const certPEMType = "CERTIFICATE"

// maxCertFileSize bounds what LoadCertificateFile reads; a chain of a few
// certificates is a few KiB.
const maxCertFileSize = 1 << 20

// chainCertificate checks id.Chain against the identity and returns it.
func (id Identity) chainCertificate() (tls.Certificate, error) {
	if err := id.ID.Validate(); err != nil {
		return tls.Certificate{}, fmt.Errorf("identity: %w", err)
	}
	pub := id.Public()
	if pub == nil {
		return tls.Certificate{}, fmt.Errorf("identity %s: %w: %d bytes, want %d",
			id.ID, ErrInvalidKey, len(id.Key), ed25519.PrivateKeySize)
	}
	leaf, err := x509.ParseCertificate(id.Chain[0])
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity %s: %w: leaf: %v", id.ID, ErrInvalidCertificate, err)
	}
	if key, ok := leaf.PublicKey.(ed25519.PublicKey); !ok || !key.Equal(pub) {
		return tls.Certificate{}, fmt.Errorf("identity %s: %w: the certificate (serial %x) is not for this node's key %s",
			id.ID, ErrInvalidCertificate, leaf.SerialNumber, FormatPublicKey(pub))
	}
	named, _, _, err := PeerFromCertificateWithDomain(leaf)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity %s: %w", id.ID, err)
	}
	if named != id.ID {
		return tls.Certificate{}, fmt.Errorf("identity %s: %w: the certificate (serial %x) names %s",
			id.ID, ErrInvalidCertificate, leaf.SerialNumber, named)
	}
	chain := make([][]byte, len(id.Chain))
	for i, der := range id.Chain {
		chain[i] = bytes.Clone(der)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: id.Key, Leaf: leaf}, nil
}

// LoadCertificateFile reads a PEM file of certificates (a node's chain, leaf
// first, or a list of CA certificates) and returns them parsed. Errors wrap
// ErrInvalidCertificate (or the os error for a file that cannot be read)
// and name the file.
func LoadCertificateFile(path string) ([]*x509.Certificate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading certificate file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCertFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading certificate file %s: %w", path, err)
	}
	if len(data) > maxCertFileSize {
		return nil, fmt.Errorf("%w %s: larger than %d bytes, not a certificate file", ErrInvalidCertificate, path, maxCertFileSize)
	}
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("certificate file %s: %w", path, err)
	}
	return certs, nil
}

// ParseCertificatesPEM parses one or more PEM "CERTIFICATE" blocks, in
// order. Anything else (another block type, a private key, text between
// or after the blocks other than white space) is refused; the error wraps
// ErrInvalidCertificate and says which block is wrong.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	if HoldsPrivateKey(data) {
		return nil, fmt.Errorf("%w: holds a private key (not shown); a certificate file must hold certificates only", ErrInvalidCertificate)
	}
	var out []*x509.Certificate
	rest := data
	for n := 1; ; n++ {
		if len(bytes.TrimSpace(rest)) == 0 {
			break
		}
		if !bytes.HasPrefix(bytes.TrimSpace(rest), []byte("-----BEGIN ")) {
			return nil, fmt.Errorf("%w: block %d: text that is not PEM (want %q blocks only)", ErrInvalidCertificate, n, certPEMType)
		}
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: block %d: not PEM (want %q blocks only)", ErrInvalidCertificate, n, certPEMType)
		}
		if block.Type != certPEMType {
			return nil, fmt.Errorf("%w: block %d is %q, want %q", ErrInvalidCertificate, n, block.Type, certPEMType)
		}
		if len(block.Headers) != 0 {
			return nil, fmt.Errorf("%w: block %d has PEM headers", ErrInvalidCertificate, n)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: block %d: %v", ErrInvalidCertificate, n, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no %q block found", ErrInvalidCertificate, certPEMType)
	}
	return out, nil
}

// EncodeCertificatesPEM returns certs as PEM "CERTIFICATE" blocks.
func EncodeCertificatesPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: certPEMType, Bytes: c.Raw})...)
	}
	return out
}

// ChainDER returns the DER of each certificate, for Identity.Chain.
func ChainDER(certs []*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}
