package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// Meta is what a node announces to its cluster with its membership.
type Meta struct {
	Cluster string // the node's cluster
	QUIC    string // its QUIC link listener, host:port ("" without)
	TCP     string // its TCP link listener, host:port ("" without)
	// Incarnation is the node's current run (wandistd's incarnation).
	Incarnation uint64
	// Leaving is set by a node that is closing, just before it leaves: so
	// that the others tell its leave from a failure (memberlist's events
	// do not say which).
	Leaving bool
}

// MaxMetaSize is the most an encoded Meta may take: memberlist's limit.
const MaxMetaSize = memberlist.MetaMaxSize

const (
	metaVersion = 1
	flagLeaving = 1 << 0
)

// ErrMeta is wrapped by every error decoding or encoding a Meta.
var ErrMeta = errors.New("gossip: bad meta")

// Encode is m in its compact form: a version byte, then Cluster, QUIC and
// TCP each as a uvarint length and UTF-8 bytes, then Incarnation as a
// uvarint, then a flags byte (bit 0: Leaving).
func (m Meta) Encode() ([]byte, error) {
	b := []byte{metaVersion}
	for _, s := range []string{m.Cluster, m.QUIC, m.TCP} {
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("%w: %q is not UTF-8", ErrMeta, s)
		}
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, m.Incarnation)
	var flags byte
	if m.Leaving {
		flags |= flagLeaving
	}
	b = append(b, flags)
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, more than %d", ErrMeta, len(b), MaxMetaSize)
	}
	return b, nil
}

// DecodeMeta decodes what Encode made; anything else is an error wrapping ErrMeta.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) > MaxMetaSize {
		return m, fmt.Errorf("%w: %d bytes, more than %d", ErrMeta, len(b), MaxMetaSize)
	}
	if len(b) == 0 || b[0] != metaVersion {
		return m, fmt.Errorf("%w: not version %d", ErrMeta, metaVersion)
	}
	b = b[1:]
	fields := []*string{&m.Cluster, &m.QUIC, &m.TCP}
	names := []string{"cluster", "quic", "tcp"}
	for i, f := range fields {
		n, k := uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return Meta{}, fmt.Errorf("%w: %s: bad length", ErrMeta, names[i])
		}
		s := string(b[k : k+int(n)])
		if !utf8.ValidString(s) {
			return Meta{}, fmt.Errorf("%w: %s is not UTF-8", ErrMeta, names[i])
		}
		*f, b = s, b[k+int(n):]
	}
	inc, k := uvarint(b)
	if k <= 0 {
		return Meta{}, fmt.Errorf("%w: incarnation: bad uvarint", ErrMeta)
	}
	b = b[k:]
	if len(b) == 0 || b[0]&^flagLeaving != 0 {
		return Meta{}, fmt.Errorf("%w: no flags, or unknown ones", ErrMeta)
	}
	if len(b) != 1 {
		return Meta{}, fmt.Errorf("%w: %d bytes after the end", ErrMeta, len(b)-1)
	}
	m.Incarnation, m.Leaving = inc, b[0]&flagLeaving != 0
	return m, nil
}

// uvarint is binary.Uvarint that takes only the minimal encoding (so that
// one Meta has one encoding); k <= 0 on error.
func uvarint(b []byte) (v uint64, k int) {
	v, k = binary.Uvarint(b)
	if k > 0 && k != len(binary.AppendUvarint(nil, v)) {
		return 0, -1
	}
	return v, k
}
