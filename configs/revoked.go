package configs

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/wandist/wandist/auth"
)

// ErrInvalidRevoked is wrapped by the errors of LoadRevoked about the
// contents of a revocation file.
var ErrInvalidRevoked = errors.New("invalid revocation list")

// maxRevokedFile bounds the size of a revocation file.
const maxRevokedFile = 16 << 20

// LoadRevoked reads a revocation file (trust.revoked_file): one entry per
// line, either a node's public key in the text form `wandistd keygen`
// prints (ed25519:...) or a certificate serial number as serial:HEX (hex
// digits, optionally separated by ':'). Blank lines and text after '#' are
// ignored. Errors name the file and line; those about the contents wrap
// ErrInvalidRevoked.
func LoadRevoked(path string) ([]ed25519.PublicKey, []*big.Int, error) {
	data, err := readLimited(path, maxRevokedFile, true)
	if err != nil {
		return nil, nil, fmt.Errorf("revocation file: %w", err)
	}
	if auth.HoldsPrivateKey(data) {
		return nil, nil, fmt.Errorf("%w: %s holds a private key (not shown); list public keys and serials only", ErrInvalidRevoked, path)
	}
	var keys []ed25519.PublicKey
	var serials []*big.Int
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxRevokedFile)
	for ln := 1; sc.Scan(); ln++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if hex, ok := strings.CutPrefix(line, "serial:"); ok {
			s, ok := new(big.Int).SetString(strings.ReplaceAll(strings.TrimSpace(hex), ":", ""), 16)
			if !ok || s.Sign() < 0 {
				return nil, nil, fmt.Errorf("%w: %s:%d: bad serial %q; want serial:HEX (hex digits, e.g. serial:3f0a9c)", ErrInvalidRevoked, path, ln, abbrev(hex))
			}
			serials = append(serials, s)
			continue
		}
		k, err := auth.ParsePublicKey(line)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s:%d: want a public key (ed25519:...) or serial:HEX: %w", ErrInvalidRevoked, path, ln, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrInvalidRevoked, path, err)
	}
	return keys, serials, nil
}
