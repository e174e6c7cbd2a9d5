package wire

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the seed corpora under testdata/fuzz")

// fuzzMaxBody keeps the fuzzers' allocations small.
const fuzzMaxBody = 1 << 16

// readerSeeds returns the FuzzReader seeds by file name: every sample
// message as a one-frame stream, all of them in one stream, and a few
// broken streams.
func readerSeeds() map[string][]byte {
	seeds := map[string][]byte{}
	var all []byte
	for i, m := range sampleMessages() {
		frame := AppendFrame(nil, m)
		seeds[fmt.Sprintf("seed-%02d-%v", i, m.Type())] = frame
		all = append(all, frame...)
	}
	seeds["seed-stream-all"] = all
	seeds["seed-bad-version"] = append(header(2, TypePing, 0, 1), 1)
	seeds["seed-bad-flags"] = append(header(Version, TypePing, 1, 1), 1)
	seeds["seed-huge-length"] = header(Version, TypeData, 0, 0xffffffff)
	seeds["seed-unknown-type"] = append(header(Version, 0x99, 0, 1), 1)
	seeds["seed-truncated"] = all[:len(all)-3]
	return seeds
}

// decodeSeeds returns the FuzzDecode seeds by file name: every sample
// message's type and body.
func decodeSeeds() map[string]struct {
	t    byte
	body []byte
} {
	seeds := map[string]struct {
		t    byte
		body []byte
	}{}
	for i, m := range sampleMessages() {
		seeds[fmt.Sprintf("seed-%02d-%v", i, m.Type())] = struct {
			t    byte
			body []byte
		}{byte(m.Type()), m.AppendBody(nil)}
	}
	return seeds
}

// checkReencode verifies that a decoded message encodes back to exactly
// body (the encoding is canonical) and decodes again to the same value,
// also into a struct that held another value before.
func checkReencode(t *testing.T, m Message, body []byte) {
	t.Helper()
	again := m.AppendBody(nil)
	if !bytes.Equal(again, body) {
		t.Fatalf("%v re-encodes differently:\n got % x\nwant % x", m.Type(), again, body)
	}
	m2, err := Decode(m.Type(), again)
	if err != nil {
		t.Fatalf("%v: re-encoded body does not decode: %v", m.Type(), err)
	}
	if !reflect.DeepEqual(m2, m) {
		t.Fatalf("%v re-decodes differently:\n got %#v\nwant %#v", m.Type(), m2, m)
	}
	for _, body := range sampleBodies()[m.Type()] {
		other, err := Decode(m.Type(), body) // a struct that held a sample
		if err != nil {
			t.Fatalf("sample %v does not decode: %v", m.Type(), err)
		}
		if err := other.DecodeBody(again); err != nil || !reflect.DeepEqual(other, m) {
			t.Fatalf("%v decoded into a used struct: %#v, %v; want %#v", m.Type(), other, err, m)
		}
	}
}

// sampleBodies returns the encoded bodies of the sample messages by type,
// built once: the fuzz targets check every decoded frame against them, and
// building the samples for each frame made FuzzReader slow.
var sampleBodies = sync.OnceValue(func() map[Type][][]byte {
	out := map[Type][][]byte{}
	for _, m := range sampleMessages() {
		out[m.Type()] = append(out[m.Type()], m.AppendBody(nil))
	}
	return out
})

func checkDecodeError(t *testing.T, typ Type, err error) {
	t.Helper()
	var fe *FrameError
	if !errors.As(err, &fe) || fe.Type != typ {
		t.Fatalf("Decode(%v) error %#v is not a *FrameError of that type", typ, err)
	}
	want := ErrMalformed
	if !typ.Known() {
		want = ErrUnknownType
	}
	if !errors.Is(err, want) {
		t.Fatalf("Decode(%v) error %v, want %v", typ, err, want)
	}
}

func FuzzReader(f *testing.F) {
	for _, seed := range readerSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), fuzzMaxBody)
		for {
			start := r.Offset()
			typ, body, err := r.ReadFrame()
			if err != nil {
				var fe *FrameError
				switch {
				case err == io.EOF:
					if start != int64(len(data)) {
						t.Fatalf("io.EOF at offset %d of %d", start, len(data))
					}
				case err == io.ErrUnexpectedEOF:
				case errors.As(err, &fe):
					if fe.Offset != start {
						t.Fatalf("FrameError offset %d, frame at %d", fe.Offset, start)
					}
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(body) > fuzzMaxBody {
				t.Fatalf("body of %d bytes over the limit", len(body))
			}
			m, err := Decode(typ, body)
			if err != nil {
				checkDecodeError(t, typ, err)
				continue
			}
			frame := AppendFrame(nil, m)
			if !bytes.Equal(frame, data[start:r.Offset()]) {
				t.Fatalf("%v frame re-encodes differently", typ)
			}
			checkReencode(t, m, body)
		}
	})
}

func FuzzDecode(f *testing.F) {
	for _, seed := range decodeSeeds() {
		f.Add(seed.t, seed.body)
	}
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		m, err := Decode(Type(typ), body)
		if err != nil {
			checkDecodeError(t, Type(typ), err)
			return
		}
		if m.Type() != Type(typ) {
			t.Fatalf("Decode(%v) returned a %v", Type(typ), m.Type())
		}
		checkReencode(t, m, body)
	})
}

// TestSeedCorpus checks that the seed corpora kept under testdata/fuzz match
// the sample messages; run with -update-seeds to rewrite them.
func TestSeedCorpus(t *testing.T) {
	want := map[string]string{}
	for name, data := range readerSeeds() {
		want[filepath.Join("testdata", "fuzz", "FuzzReader", name)] =
			fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	}
	for name, s := range decodeSeeds() {
		want[filepath.Join("testdata", "fuzz", "FuzzDecode", name)] =
			fmt.Sprintf("go test fuzz v1\nbyte(%q)\n[]byte(%q)\n", s.t, s.body)
	}
	// Every message type has a seed.
	covered := map[Type]bool{}
	for _, m := range sampleMessages() {
		covered[m.Type()] = true
	}
	for i := range 256 {
		if typ := Type(i); typ.Known() && !covered[typ] {
			t.Errorf("no sample message (so no fuzz seed) of type %v: add one to sampleMessages", typ)
		}
	}
	// Seed files that no longer match a sample (the list moved) go.
	for _, target := range []string{"FuzzReader", "FuzzDecode"} {
		old, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "seed-*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range old {
			if _, ok := want[path]; ok {
				continue
			}
			if *updateSeeds {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("stale seed file %s (run go test ./wire -run TestSeedCorpus -update-seeds)", path)
		}
	}
	for path, content := range want {
		if *updateSeeds {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("seed file %s missing or stale (run go test ./wire -run TestSeedCorpus -update-seeds)", path)
		}
	}
}
