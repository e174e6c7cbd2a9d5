package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// PublicKeyPrefix starts every public key in its text form.
const PublicKeyPrefix = "ed25519:"

// Errors of ParsePublicKey. Neither their text nor the errors wrapping them
// quote the input: a private key pasted where a public key belongs must not
// end up in a log or an HTTP answer.
var (
	// ErrInvalidPublicKey: the text is not a public key in the form
	// FormatPublicKey writes.
	ErrInvalidPublicKey = errors.New("invalid public key")
	// ErrPrivateKey: the text holds a private key where a public key
	// belongs.
	ErrPrivateKey = errors.New("a private key where a public key belongs")
)

// FormatPublicKey returns the one-line text form of a node's public key:
// "ed25519:" followed by the standard base64 encoding of the 32 raw key bytes.
// It is what `wandistd keygen` prints and what a peer pastes into its config.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey parses the text form written by FormatPublicKey.
// Surrounding white space is ignored. A private key (a PEM private key
// block, its base64 body, or an "ed25519:" line holding the 64 bytes of an
// Ed25519 private key) gives an error wrapping ErrPrivateKey; anything else
// that is not a public key one wrapping ErrInvalidPublicKey. The errors
// describe the problem without quoting s.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if HoldsPrivateKey([]byte(s)) {
		return nil, privateKeyError()
	}
	rest, ok := strings.CutPrefix(s, PublicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: must start with %q (%d characters given; not shown)", ErrInvalidPublicKey, PublicKeyPrefix, len(s))
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		// A CorruptInputError names a position only.
		return nil, fmt.Errorf("%w: bad base64 after %q: %v", ErrInvalidPublicKey, PublicKeyPrefix, err)
	}
	if len(raw) == ed25519.PrivateKeySize {
		return nil, privateKeyError()
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidPublicKey, len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

func privateKeyError() error {
	return fmt.Errorf("%w (not shown); give the peer's public key, the %s... line its `wandistd keygen` printed, and keep the private key on its node",
		ErrPrivateKey, PublicKeyPrefix)
}

// pkcs8Ed25519 starts the base64 of every PKCS#8 Ed25519 private key (the
// body of the PEM block GenerateKeyFile writes).
const pkcs8Ed25519 = "MC4CAQAwBQYDK2VwBCIEI"

// HoldsPrivateKey reports whether text looks like it holds a private key:
// a PEM "... PRIVATE KEY" block of any kind (PKCS#8, OpenSSH, RSA, EC) or
// the base64 body of a PKCS#8 Ed25519 key.
func HoldsPrivateKey(text []byte) bool {
	return bytes.Contains(text, []byte("PRIVATE KEY-----")) || bytes.Contains(text, []byte(pkcs8Ed25519))
}
