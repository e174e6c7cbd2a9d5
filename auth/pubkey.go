package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
)

// PublicKeyPrefix starts every public key in its text form.
const PublicKeyPrefix = "ed25519:"

// FormatPublicKey returns the one-line text form of a node's public key:
// "ed25519:" followed by the standard base64 encoding of the 32 raw key bytes.
// It is what `wandistd keygen` prints and what a peer pastes into its config.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey parses the text form written by FormatPublicKey.
// Surrounding white space is ignored.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, PublicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("public key %q: must start with %q", abbrev(s), PublicKeyPrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("public key %q: bad base64: %v", abbrev(s), err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q: %d bytes, want %d", abbrev(s), len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

func abbrev(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
