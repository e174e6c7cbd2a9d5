package gossip

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// ParseKey reads the cluster's gossip key from the bytes of its file:
// KeySize bytes raw, or their base64 (standard, padded) with surrounding
// white space. The error never quotes the bytes.
func ParseKey(b []byte) ([]byte, error) {
	if len(b) == KeySize {
		return bytes.Clone(b), nil
	}
	t := bytes.TrimSpace(b)
	k := make([]byte, base64.StdEncoding.DecodedLen(len(t)))
	n, err := base64.StdEncoding.Decode(k, t)
	if err != nil || n != KeySize {
		return nil, fmt.Errorf("%w: the gossip key file holds %d bytes: want %d raw bytes, or their base64", ErrConfig, len(b), KeySize)
	}
	return k[:n], nil
}
