package gossip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{
		{},
		{Cluster: "eu", QUIC: "10.0.0.1:7000", TCP: "[::1]:7001", Incarnation: 1 << 62},
		{Cluster: "x", TCP: "host.example:1", Leaving: true},
	} {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMeta(b)
		if err != nil || got != m {
			t.Fatalf("DecodeMeta(Encode(%+v)) = %+v, %v", m, got, err)
		}
	}
}

func TestMetaRefused(t *testing.T) {
	if _, err := (Meta{QUIC: strings.Repeat("a", MaxMetaSize)}).Encode(); !errors.Is(err, ErrMeta) {
		t.Fatalf("oversized meta encoded: %v", err)
	}
	good, _ := Meta{Cluster: "eu", Incarnation: 7}.Encode()
	for name, b := range map[string][]byte{
		"empty":    nil,
		"version":  append([]byte{9}, good[1:]...),
		"trailing": append(append([]byte{}, good...), 0),
		"short":    good[:len(good)-1],
		"length":   {metaVersion, 200, 'a'},
		"utf8":     {metaVersion, 1, 0xff, 0, 0, 0},
		"big":      bytes.Repeat([]byte{1}, MaxMetaSize+1),
	} {
		if _, err := DecodeMeta(b); !errors.Is(err, ErrMeta) {
			t.Errorf("%s: DecodeMeta(%x) = %v, want ErrMeta", name, b, err)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	good, _ := Meta{Cluster: "eu", QUIC: "1.2.3.4:5", TCP: "a:1", Incarnation: 99}.Encode()
	f.Add(good)
	f.Add([]byte{metaVersion, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Encode(DecodeMeta(%x)) = %x: not canonical", b, again)
		}
	})
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, KeySize)
	b64 := []byte(base64.StdEncoding.EncodeToString(raw) + "\n")
	for _, in := range [][]byte{raw, b64} {
		if k, err := ParseKey(in); err != nil || !bytes.Equal(k, raw) {
			t.Errorf("ParseKey(%q) = %x, %v", in, k, err)
		}
	}
	for _, in := range [][]byte{nil, raw[:16], []byte("not base64 at all!"), []byte(base64.StdEncoding.EncodeToString(raw[:16]))} {
		if _, err := ParseKey(in); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseKey(%q) = %v, want ErrConfig", in, err)
		}
	}
}
