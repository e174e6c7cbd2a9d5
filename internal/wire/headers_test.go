package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestHeadersRoundTrip(t *testing.T) {
	hs := []Header{{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, {Key: "empty", Value: ""}}
	block, err := EncodeHeaders(nil, hs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseHeaders(block)
	if err != nil || len(got) != 2 || got[0] != hs[0] || got[1] != hs[1] {
		t.Fatalf("ParseHeaders = %v, %v", got, err)
	}
	if b, err := EncodeHeaders(nil, nil); err != nil || b != nil {
		t.Fatalf("no headers encode as %q, %v (want nothing)", b, err)
	}
	// At the bounds: 16 headers, a 64-byte key, 4096 bytes in all.
	var full []Header
	for i := range MaxHeaders {
		full = append(full, Header{Key: strings.Repeat(string(rune('a'+i)), MaxHeaderKey), Value: strings.Repeat("v", MaxHeaderBytes/MaxHeaders-MaxHeaderKey)})
	}
	if block, err = EncodeHeaders(nil, full); err != nil {
		t.Fatal(err)
	}
	if got, err := ParseHeaders(block); err != nil || len(got) != MaxHeaders {
		t.Fatalf("headers at the bounds: %d, %v", len(got), err)
	}
}

// Each bound broken gives an error that says which, at encoding and at
// decoding.
func TestHeadersBounds(t *testing.T) {
	many := make([]Header, MaxHeaders+1)
	for i := range many {
		many[i] = Header{Key: "k" + string(rune('a'+i))}
	}
	for _, c := range []struct {
		name string
		hs   []Header
		want string
	}{
		{"too many", many, "17 headers, at most 16"},
		{"empty key", []Header{{Key: "", Value: "v"}}, `header 0 (key ""): 0 bytes`},
		{"long key", []Header{{Key: strings.Repeat("k", 65)}}, "65 bytes"},
		{"upper case", []Header{{Key: "ok"}, {Key: "Trace"}}, `header 1 (key "Trace"): byte 'T' at 0`},
		{"space", []Header{{Key: "a b"}}, `byte ' ' at 1`},
		{"twice", []Header{{Key: "a"}, {Key: "a"}}, `key "a" given twice`},
		{"too big", []Header{{Key: "a", Value: strings.Repeat("v", 4000)}, {Key: "b", Value: strings.Repeat("v", 96)}}, "keys and values of 4098 bytes, at most 4096"},
	} {
		_, err := EncodeHeaders(nil, c.hs)
		if !errors.Is(err, ErrBadHeaders) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: EncodeHeaders: %v, want ErrBadHeaders saying %q", c.name, err, c.want)
		}
		// The same block built by hand is refused by the decoders.
		block := appendUvarint(nil, uint64(len(c.hs)))
		for _, h := range c.hs {
			block = appendString(appendString(block, h.Key), h.Value)
		}
		if err := CheckHeaders(block); !errors.Is(err, ErrBadHeaders) {
			t.Errorf("%s: CheckHeaders: %v", c.name, err)
		}
		s := Send{SendHeader: SendHeader{Req: 1, Group: "g"}, Headers: block}
		var back Send
		if err := back.DecodeBody(s.AppendBody(nil)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "Send.Headers") {
			t.Errorf("%s: Send decode: %v, want ErrMalformed naming Send.Headers", c.name, err)
		}
	}
	for name, block := range map[string][]byte{
		"count 0":  {0},
		"trailing": append(mustHeaders([]Header{{Key: "a", Value: "b"}}), 0),
		"short":    {2, 1, 'a', 0},
	} {
		if err := CheckHeaders(block); !errors.Is(err, ErrBadHeaders) {
			t.Errorf("%s: CheckHeaders accepted %q", name, block)
		}
	}
}

// The forms without headers are unchanged: a message without headers
// encodes without FlagHeaders and without the field, byte for byte as
// before headers existed, so a daemon or client of an earlier version
// decodes it; and FlagHeaders is set on the wire by the encoder from
// Headers alone.
func TestHeadersCompatibility(t *testing.T) {
	payload := []byte("p")
	// Data as encoded before headers: Seq 3, Flags 0, To 1, From 2, TTL 0,
	// Group "", Payload "p", Corr 0.
	old := []byte{3, 0, 1, 2, 0, 0, 1, 'p', 0}
	d := Data{Seq: 3, To: 1, From: 2, Payload: payload, Flags: FlagHeaders} // a stale flag alone is dropped
	if got := d.AppendBody(nil); !bytes.Equal(got, old) {
		t.Fatalf("Data without headers encodes as %x, want the old form %x", got, old)
	}
	var back Data
	if err := back.DecodeBody(old); err != nil || back.Headers != nil {
		t.Fatalf("old Data decodes as %+v, %v", back, err)
	}
	d.Headers = mustHeaders([]Header{{Key: "a", Value: "b"}})
	with := d.AppendBody(nil)
	if err := back.DecodeBody(with); err != nil || back.Flags&FlagHeaders == 0 || !bytes.Equal(back.Headers, d.Headers) {
		t.Fatalf("Data with headers decodes as %+v, %v", back, err)
	}
	// A decoder of the old form (no Headers field) fails on such a body
	// with trailing bytes, not in silence: the spec says both ends must
	// speak headers to use them.
	cut := with[:len(with)-len(d.Headers)-1]
	if err := back.DecodeBody(cut); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Data with FlagHeaders and no block: %v", err)
	}
	var dl Deliver
	if err := dl.DecodeBody((&Deliver{Mailbox: 1, Payload: payload}).AppendBody(nil)); err != nil || dl.Headers != nil || dl.Flags != 0 {
		t.Fatalf("Deliver without headers: %+v, %v", dl, err)
	}
}

// FuzzHeaders: CheckHeaders and ParseHeaders agree, never panic, and a
// good block encodes back to itself.
func FuzzHeaders(f *testing.F) {
	f.Add(sampleHeaders)
	f.Add([]byte{0})
	f.Add([]byte{1, 1, 'a', 0})
	f.Add([]byte{2, 1, 'a', 0, 1, 'a', 0})
	f.Fuzz(func(t *testing.T, block []byte) {
		hs, err := ParseHeaders(block)
		if cerr := CheckHeaders(block); len(block) > 0 && (cerr == nil) != (err == nil) {
			t.Fatalf("CheckHeaders %v, ParseHeaders %v", cerr, err)
		}
		if err != nil || len(block) == 0 {
			return
		}
		again, err := EncodeHeaders(nil, hs)
		if err != nil || !bytes.Equal(again, block) {
			t.Fatalf("block %x re-encodes as %x, %v", block, again, err)
		}
	})
}
