package spool

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// Segment header.
const (
	magic         = "WDSPOOL1"
	formatVersion = 1
	headerSize    = 32 // magic(8) version(4) stream(8) segment(8) crc(4)
)

// Record framing.
const (
	prefixSize     = 8 // u32 length + u32 CRC-32C
	nonceSize      = chacha20poly1305.NonceSizeX
	tagSize        = chacha20poly1305.Overhead
	recordOverhead = prefixSize + nonceSize + tagSize
)

// Record types (the first plaintext byte).
const (
	recMessage    byte = 1
	recAck        byte = 2
	recReceived   byte = 3
	recCheckpoint byte = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendHeader appends a segment header.
func appendHeader(b []byte, stream, segno uint64) []byte {
	start := len(b)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, formatVersion)
	b = binary.LittleEndian.AppendUint64(b, stream)
	b = binary.LittleEndian.AppendUint64(b, segno)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// errUnsupportedVersion marks a header that is intact but of another format
// version: Open refuses it rather than treating the segment as corrupt.
var errUnsupportedVersion = errors.New("unsupported format version")

// parseHeader checks a segment header and returns its stream id and segment
// number. A reason is returned for a header that is not usable.
func parseHeader(b []byte) (stream, segno uint64, err error) {
	if len(b) < headerSize {
		return 0, 0, fmt.Errorf("short header (%d of %d bytes)", len(b), headerSize)
	}
	if string(b[:8]) != magic {
		return 0, 0, errors.New("bad magic")
	}
	if crc32.Checksum(b[:28], castagnoli) != binary.LittleEndian.Uint32(b[28:32]) {
		return 0, 0, errors.New("header CRC mismatch")
	}
	if v := binary.LittleEndian.Uint32(b[8:12]); v != formatVersion {
		return 0, 0, fmt.Errorf("%w %d (this build reads %d)", errUnsupportedVersion, v, formatVersion)
	}
	return binary.LittleEndian.Uint64(b[12:20]), binary.LittleEndian.Uint64(b[20:28]), nil
}

// sealer encrypts and frames records, and opens them again.
type sealer struct {
	aead   cipher.AEAD
	stream uint64
}

func newSealer(key [32]byte, stream uint64) *sealer {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("spool: " + err.Error()) // only for a key of the wrong size
	}
	return &sealer{aead: aead, stream: stream}
}

// ad returns the additional data binding a record to its place.
func (s *sealer) ad(segno uint64, off int64) [24]byte {
	var ad [24]byte
	binary.LittleEndian.PutUint64(ad[0:], s.stream)
	binary.LittleEndian.PutUint64(ad[8:], segno)
	binary.LittleEndian.PutUint64(ad[16:], uint64(off))
	return ad
}

// appendRecord appends the framed, encrypted record of plain, to be written
// at offset off of segment segno.
func (s *sealer) appendRecord(dst []byte, segno uint64, off int64, plain []byte) []byte {
	var nonce [nonceSize]byte
	rand.Read(nonce[:]) // never fails (crypto/rand panics on failure)
	start := len(dst)
	dst = slices.Grow(dst, recordOverhead+len(plain))
	dst = append(dst, make([]byte, prefixSize)...)
	dst = append(dst, nonce[:]...)
	ad := s.ad(segno, off)
	dst = s.aead.Seal(dst, nonce[:], plain, ad[:])
	body := dst[start+prefixSize:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

// open authenticates and decrypts a record body (nonce + ciphertext, already
// checked against its CRC) in place and returns the plaintext.
func (s *sealer) open(body []byte, segno uint64, off int64) ([]byte, error) {
	if len(body) < nonceSize+tagSize {
		return nil, errors.New("record shorter than nonce and tag")
	}
	ad := s.ad(segno, off)
	return s.aead.Open(body[nonceSize:nonceSize], body[:nonceSize], body[nonceSize:], ad[:])
}

// recordSize is the size on disk of a record with a plaintext of n bytes.
func recordSize(n int) int64 { return int64(recordOverhead + n) }

// Plaintext encoding.

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeMessage(m *Message) []byte {
	n := 1 + 6*binary.MaxVarintLen64 + 2*binary.MaxVarintLen64 + len(m.Peer) + len(m.Group) + 2*binary.MaxVarintLen64 + len(m.Payload) + len(m.Headers)
	b := make([]byte, 0, n)
	b = append(b, recMessage)
	b = appendString(b, m.Peer)
	b = binary.AppendUvarint(b, m.Seq)
	b = binary.AppendUvarint(b, m.Flags)
	b = binary.AppendUvarint(b, m.To)
	b = binary.AppendUvarint(b, m.From)
	b = appendString(b, m.Group)
	b = binary.AppendVarint(b, m.Deadline)
	b = binary.AppendUvarint(b, uint64(len(m.Payload)))
	b = append(b, m.Payload...)
	if len(m.Headers) == 0 { // the record as before headers
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(m.Headers)))
	return append(b, m.Headers...)
}

func encodeAck(peer string, seq uint64) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(peer))
	b = append(b, recAck)
	b = appendString(b, peer)
	return binary.AppendUvarint(b, seq)
}

func encodeReceived(k RecvKey, seq uint64) []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(k.Peer))
	b = append(b, recReceived)
	b = appendString(b, k.Peer)
	b = binary.AppendUvarint(b, k.Stream)
	return binary.AppendUvarint(b, seq)
}

// peerMeta is the metadata kept per destination peer.
type peerMeta struct {
	next  uint64 // 1 + highest Seq appended (0 = nothing appended)
	acked uint64 // highest acknowledged Seq
}

// meta is the complete metadata written in a checkpoint.
type meta struct {
	peers    map[string]peerMeta
	received map[RecvKey]uint64
}

func newMeta() meta {
	return meta{peers: map[string]peerMeta{}, received: map[RecvKey]uint64{}}
}

func encodeCheckpoint(m meta) []byte {
	b := []byte{recCheckpoint}
	peers := make([]string, 0, len(m.peers))
	for p := range m.peers {
		peers = append(peers, p)
	}
	slices.Sort(peers)
	b = binary.AppendUvarint(b, uint64(len(peers)))
	for _, p := range peers {
		pm := m.peers[p]
		b = appendString(b, p)
		b = binary.AppendUvarint(b, pm.next)
		b = binary.AppendUvarint(b, pm.acked)
	}
	keys := make([]RecvKey, 0, len(m.received))
	for k := range m.received {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b RecvKey) int {
		if c := strings.Compare(a.Peer, b.Peer); c != 0 {
			return c
		}
		return cmpUint(a.Stream, b.Stream)
	})
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k.Peer)
		b = binary.AppendUvarint(b, k.Stream)
		b = binary.AppendUvarint(b, m.received[k])
	}
	return b
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// decoder reads plaintext fields; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = errors.New(what)
	}
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint in " + field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint in " + field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns a length-prefixed field, aliasing the input.
func (d *decoder) bytes(field string) []byte {
	n := d.uvarint(field)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("%s length %d beyond end of record (%d bytes left)", field, n, len(d.b)))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str(field string) string { return string(d.bytes(field)) }

// record is a decoded plaintext.
type record struct {
	typ  byte
	msg  Message // recMessage
	peer string  // recAck
	seq  uint64  // recAck, recReceived
	key  RecvKey // recReceived
	cp   meta    // recCheckpoint
}

// decodeRecord decodes a plaintext. Strings and the payload are copied.
func decodeRecord(p []byte) (record, error) {
	var r record
	if len(p) == 0 {
		return r, errors.New("empty record")
	}
	r.typ = p[0]
	d := decoder{b: p[1:]}
	switch r.typ {
	case recMessage:
		r.msg.Peer = d.str("Peer")
		r.msg.Seq = d.uvarint("Seq")
		r.msg.Flags = d.uvarint("Flags")
		r.msg.To = d.uvarint("To")
		r.msg.From = d.uvarint("From")
		r.msg.Group = d.str("Group")
		r.msg.Deadline = d.varint("Deadline")
		if pl := d.bytes("Payload"); len(pl) > 0 {
			r.msg.Payload = slices.Clone(pl)
		}
		if len(d.b) > 0 { // a record written with headers
			if hs := d.bytes("Headers"); len(hs) > 0 {
				r.msg.Headers = slices.Clone(hs)
			}
		}
	case recAck:
		r.peer = d.str("Peer")
		r.seq = d.uvarint("Seq")
	case recReceived:
		r.key.Peer = d.str("Peer")
		r.key.Stream = d.uvarint("Stream")
		r.seq = d.uvarint("Seq")
	case recCheckpoint:
		// Counts are not trusted for allocation: the maps grow per entry read.
		r.cp = newMeta()
		n := d.uvarint("peer count")
		for i := uint64(0); i < n && d.err == nil; i++ {
			p := d.str("Peer")
			pm := peerMeta{next: d.uvarint("NextSeq"), acked: d.uvarint("Acked")}
			r.cp.peers[p] = pm
		}
		n = d.uvarint("received count")
		for i := uint64(0); i < n && d.err == nil; i++ {
			k := RecvKey{Peer: d.str("Peer")}
			k.Stream = d.uvarint("Stream")
			r.cp.received[k] = d.uvarint("Seq")
		}
	default:
		return r, fmt.Errorf("unknown record type %d", r.typ)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return r, fmt.Errorf("malformed record (type %d): %w", r.typ, d.err)
	}
	return r, nil
}
