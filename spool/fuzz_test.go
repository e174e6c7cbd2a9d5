package spool

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var genSeeds = flag.Bool("spool.genseeds", false, "rewrite testdata/fuzz/FuzzRecover from valid segments")

// The fuzz spool's key and stream id, fixed so that seeds decrypt.
var (
	fuzzKey    = DeriveKey([]byte("spool fuzz key"))
	fuzzStream = uint64(0x5eed5eed5eed5eed)
)

// FuzzRecover writes arbitrary bytes after a valid header as the only
// segment: Open must not panic, and once it succeeded the spool reopens
// without problems (the bad tail was truncated). fsync is skipped (it does
// not change what recovery reads) so that the fuzzer runs at CPU speed.
func FuzzRecover(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		seg := append(appendHeader(nil, fuzzStream, 1), data...)
		if err := os.WriteFile(segPath(dir, 1), seg, 0o600); err != nil {
			t.Fatal(err)
		}
		o := Options{Dir: dir, Key: fuzzKey, SegmentBytes: MinSegmentBytes}
		s, st, err := open(o, hooks{noSync: true})
		if err != nil {
			if !errors.Is(err, ErrKeyMismatch) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		if st.StreamID != fuzzStream {
			t.Fatalf("StreamID %x", st.StreamID)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, st, err = open(o, hooks{noSync: true})
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer s.Close()
		if len(st.Problems) != 0 {
			t.Fatalf("second Open reports %v", st.Problems)
		}
	})
}

// fuzzSegment returns the records of a valid segment 1 of the fuzz spool.
func fuzzSegment(plains ...[]byte) []byte {
	sl := newSealer(fuzzKey, fuzzStream)
	b := appendHeader(nil, fuzzStream, 1)
	for _, p := range plains {
		b = sl.appendRecord(b, 1, int64(len(b)), p)
	}
	return b[headerSize:]
}

// TestGenFuzzSeeds writes the seed corpus with -spool.genseeds.
func TestGenFuzzSeeds(t *testing.T) {
	if !*genSeeds {
		t.Skip("run with -spool.genseeds to rewrite the seed corpus")
	}
	cp := newMeta()
	cp.peers["west/w-1"] = peerMeta{next: 4, acked: 1}
	cp.peers["north/n-2"] = peerMeta{next: 9, acked: 9}
	cp.received[RecvKey{"east/e-1", 77}] = 12
	full := fuzzSegment(encodeCheckpoint(cp),
		encodeMessage(msg("west/w-1", 2, 20)),
		encodeMessage(msg("west/w-1", 3, 0)),
		encodeAck("west/w-1", 2),
		encodeReceived(RecvKey{"east/e-1", 77}, 13),
		encodeMessage(msg("south/s-1", 1, 300)))
	seeds := map[string][]byte{
		"empty":           nil,
		"checkpoint-only": fuzzSegment(encodeCheckpoint(newMeta())),
		"full":            full,
		"torn":            full[:len(full)-7],
		"flipped":         flip(full, len(full)/2),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRecover")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		text := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

// encodeRecord encodes a decoded record again.
func encodeRecord(r record) []byte {
	switch r.typ {
	case recMessage:
		return encodeMessage(&r.msg)
	case recAck:
		return encodeAck(r.peer, r.seq)
	case recReceived:
		return encodeReceived(r.key, r.seq)
	default:
		return encodeCheckpoint(r.cp)
	}
}

// FuzzDecodeRecord decodes arbitrary record plaintexts. FuzzRecover cannot
// reach this decoder with mutated bytes (records are authenticated), so it
// is fuzzed on its own, seeded with valid encodings of every record type:
// it must not panic, and what it accepts encodes to a plaintext that
// decodes to the same record.
func FuzzDecodeRecord(f *testing.F) {
	cp := newMeta()
	cp.peers["west/w-1"] = peerMeta{next: 4, acked: 1}
	cp.received[RecvKey{"east/e-1", 77}] = 12
	for _, p := range [][]byte{
		encodeMessage(msg("west/w-1", 2, 20)),
		encodeMessage(&Message{Peer: "p"}),
		encodeMessage(&Message{Peer: "p", Payload: []byte("x"), Headers: []byte{1, 1, 'a', 1, 'b'}}),
		encodeAck("west/w-1", 2),
		encodeReceived(RecvKey{"east/e-1", 77}, 13),
		encodeCheckpoint(cp),
		encodeCheckpoint(newMeta()),
		{recCheckpoint, 0xff, 0xff, 0xff, 0xff, 0x0f}, // a huge count, no entries
		{},
		{99},
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := decodeRecord(p)
		if err != nil {
			return
		}
		again := encodeRecord(r)
		r2, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("record changes through encoding:\n got %+v\nwant %+v", r2, r)
		}
	})
}
