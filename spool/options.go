package spool

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
)

// Defaults and bounds.
const (
	// DefaultMaxBytes is Options.MaxBytes when it is zero.
	DefaultMaxBytes = 1 << 30
	// DefaultSegmentBytes is Options.SegmentBytes when it is zero.
	DefaultSegmentBytes = 64 << 20
	// MinSegmentBytes is the smallest accepted Options.SegmentBytes.
	MinSegmentBytes = 256
	// MaxQueuedBytes bounds the record bytes waiting for the writer: an Append
	// that would take them past it fails at once with ErrBusy. It is also the
	// largest plaintext of one appended record (ErrTooLarge beyond).
	MaxQueuedBytes = 16 << 20
	// MaxRecordBytes bounds the length field of a record on disk (64 MiB of
	// plaintext plus framing); recovery rejects longer records before
	// allocating. A checkpoint, which holds every peer and receive position,
	// must fit in it.
	MaxRecordBytes = 64<<20 + recordOverhead
)

// keyInfo is the HKDF info string of DeriveKey.
const keyInfo = "wandist/spool/v1"

// Options configure Open.
type Options struct {
	Dir          string       // required; created (0700) if missing
	MaxBytes     int64        // total bytes of segment files; default 1 GiB. An Append that would exceed it fails with ErrFull.
	SegmentBytes int64        // rotate to a new segment past this size; default 64 MiB (at least MinSegmentBytes)
	Key          [32]byte     // XChaCha20-Poly1305 key for every record (encryption at rest); use DeriveKey
	Logger       *slog.Logger // default discard
}

// DeriveKey derives the record key from a secret (a configured secret, or
// the node's private key seed) with HKDF-SHA256, info "wandist/spool/v1" and
// no salt.
func DeriveKey(secret []byte) [32]byte {
	var k [32]byte
	b, err := hkdf.Key(sha256.New, secret, nil, keyInfo, len(k))
	if err != nil {
		// Only possible for a key length beyond 255*32 bytes.
		panic("spool: hkdf: " + err.Error())
	}
	copy(k[:], b)
	return k
}

// withDefaults validates o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("spool: Options.Dir is required")
	}
	if o.MaxBytes < 0 || o.SegmentBytes < 0 {
		return o, fmt.Errorf("spool: negative MaxBytes (%d) or SegmentBytes (%d)", o.MaxBytes, o.SegmentBytes)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes < MinSegmentBytes {
		return o, fmt.Errorf("spool: SegmentBytes %d is below the minimum %d", o.SegmentBytes, MinSegmentBytes)
	}
	if o.Key == ([32]byte{}) {
		return o, errors.New("spool: Options.Key is zero; derive one with DeriveKey")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
