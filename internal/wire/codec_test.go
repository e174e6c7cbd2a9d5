package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func encodeBody(m Message) []byte { return m.AppendBody(nil) }

func TestEveryTypeHasSample(t *testing.T) {
	seen := map[Type]bool{}
	for _, m := range sampleMessages() {
		seen[m.Type()] = true
	}
	for i := 0; i < 256; i++ {
		typ := Type(i)
		if typ.Known() != (New(typ) != nil) {
			t.Errorf("%v: Known() = %v but New() = %v", typ, typ.Known(), New(typ))
		}
		if typ.Known() && !seen[typ] {
			t.Errorf("%v: no sample message", typ)
		}
		if m := New(typ); m != nil && m.Type() != typ {
			t.Errorf("New(%v).Type() = %v", typ, m.Type())
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		t.Run(m.Type().String(), func(t *testing.T) {
			frame := AppendFrame([]byte("prefix"), m)
			if !bytes.HasPrefix(frame, []byte("prefix")) {
				t.Fatalf("AppendFrame clobbered dst")
			}
			frame = frame[len("prefix"):]
			if frame[0] != Version || Type(frame[1]) != m.Type() || frame[2] != 0 || frame[3] != 0 {
				t.Fatalf("bad header % x", frame[:HeaderSize])
			}
			body := frame[HeaderSize:]
			if n := binary.BigEndian.Uint32(frame[4:8]); int(n) != len(body) {
				t.Fatalf("header length %d, body %d bytes", n, len(body))
			}
			if !bytes.Equal(body, encodeBody(m)) {
				t.Fatalf("AppendFrame body differs from AppendBody")
			}
			got, err := Decode(m.Type(), body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
			}
		})
	}
}

func TestTruncatedBodies(t *testing.T) {
	for _, m := range sampleMessages() {
		body := encodeBody(m)
		for n := 0; n < len(body); n++ {
			got, err := Decode(m.Type(), body[:n:n])
			if err == nil && batchPrefix(m, got) {
				continue // cut between two payloads: a shorter batch
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v truncated to %d/%d bytes: err = %v, want ErrMalformed", m.Type(), n, len(body), err)
				continue
			}
			var fe *FrameError
			if !errors.As(err, &fe) || fe.Type != m.Type() || !strings.HasPrefix(fe.Reason, m.Type().String()+".") {
				t.Errorf("%v truncated to %d: error %v does not name the field", m.Type(), n, err)
			}
		}
	}
}

// batchPrefix reports whether got is a batch message whose payloads are a
// proper, non-empty prefix of those of the batch want.
func batchPrefix(want, got Message) bool {
	w, g := batchOf(want), batchOf(got)
	return w != nil && g != nil && len(g) < len(w) && bytes.HasPrefix(w, g)
}

// batchOf returns the payloads of a batch message, nil for another.
func batchOf(m Message) Batch {
	switch m := m.(type) {
	case *SendBatch:
		return m.Payloads
	case *DeliverBatch:
		return m.Payloads
	case *DataBatch:
		return m.Payloads
	}
	return nil
}

func TestTrailingBytes(t *testing.T) {
	for _, m := range sampleMessages() {
		body := append(encodeBody(m), 0)
		if batchOf(m) != nil {
			// A batch's payloads run to the end of the body: a trailing
			// byte is the length of one more payload, here beyond the end.
			body[len(body)-1] = 5
			_, err := Decode(m.Type(), body)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), ".Payloads[") || !strings.Contains(err.Error(), "length 5 beyond end of body (0 bytes left)") {
				t.Errorf("%v with a trailing byte: err = %v", m.Type(), err)
			}
			continue
		}
		_, err := Decode(m.Type(), body)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "1 trailing bytes") {
			t.Errorf("%v with a trailing byte: err = %v", m.Type(), err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		t    Type
		body []byte
		want string
	}{
		{"payload too long", TypeData, []byte{1, 0, 2, 3, 0, 0, 0xf4, 0x03, 'a', 'b'},
			"frame (type Data): Data.Payload: length 500 beyond end of body (2 bytes left)"},
		{"group too long", TypeData, []byte{1, 0, 2, 3, 0, 9, 'a'},
			"Data.Group: length 9 beyond end of body (1 bytes left)"},
		{"varint overflow", TypePing, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
			"Ping.Echo: varint overflows 64 bits at body offset 0"},
		{"varint too long", TypePing, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
			"Ping.Echo: varint overflows 64 bits"},
		{"truncated varint", TypePing, []byte{0x80},
			"Ping.Echo: truncated varint at body offset 0"},
		{"non-minimal varint", TypeSync, []byte{0x81, 0x00},
			"Sync.Req: non-minimal varint at body offset 0"},
		{"non-minimal zero", TypeSync, []byte{0x80, 0x00},
			"Sync.Req: non-minimal varint"},
		{"missing field", TypeStreamInit, []byte{1},
			"StreamInit.Lane: missing: body ends after 1 bytes"},
		{"ready trailing byte", TypeReady, []byte{0, 0},
			"frame (type Ready): Ready: 1 trailing bytes after the last field"},
		{"member count beyond body", TypeMembersSnapshot, []byte{1, 1, 0xff, 0xff, 0x03, 0, 0, 0},
			"MembersSnapshot.Members: count 65535 beyond end of body (3 bytes left, 5 needed per element)"},
		{"bad member", TypeMembersSnapshot, []byte{1, 1, 2, 0, 0, 0, 0, 0, 9, 'x', 'y', 0, 0, 0},
			"MembersSnapshot.Members[1].Group: length 9 beyond end of body (5 bytes left)"},
		{"pipe 0", TypePipeOpen, []byte{0, 1, 'c', 1, 'n'},
			"PipeOpen.ID: 0 is not a pipe"},
		{"pipe data too long", TypePipeData, []byte{3, 5, 'a'},
			"PipeData.Data: length 5 beyond end of body (1 bytes left)"},
		{"pipe close code", TypePipeClose, []byte{3, 7, 0},
			"PipeClose.Code: unknown code 7"},
		{"pipe close reason", TypePipeClose, append([]byte{3, 0, 0x81, 0x02}, make([]byte, 257)...),
			"PipeClose.Reason: 257 bytes, at most 256"},
		{"subscribe with a body", TypeMembersSubscribe, []byte{0},
			"MembersSubscribe: 1 trailing bytes after the last field"},
		{"node members bad More", TypeNodeMembers, []byte{1, 'w', 1, 'n', 1, 1, 0, 2},
			"NodeMembers.More: boolean byte 2, want 0 or 1"},
		{"node members bad member", TypeNodeMembers, []byte{1, 'w', 1, 'n', 1, 1, 1, 9, 'x', 0, 0, 0, 0},
			"NodeMembers.Members[0].Group: length 9 beyond end of body"},
		{"node delta without op", TypeNodeDelta, []byte{1, 'w', 1, 'n', 1, 2},
			"NodeDelta.Op: missing: body ends after 6 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.t, tt.body)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			var fe *FrameError
			if !errors.As(err, &fe) || fe.Offset != -1 || fe.Type != tt.t {
				t.Fatalf("err = %#v, want *FrameError of type %v, offset -1", err, tt.t)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeUnknownType(t *testing.T) {
	for _, typ := range []Type{0, 0x08, 0x16, 0x24, 0x3f, 0x5f, 0x7f, 0x80, 0xff} {
		m, err := Decode(typ, nil)
		if m != nil || !errors.Is(err, ErrUnknownType) {
			t.Errorf("Decode(%v) = %v, %v; want ErrUnknownType", typ, m, err)
		}
	}
	if s := Type(0x99).String(); s != "Type(0x99)" {
		t.Errorf("Type(0x99).String() = %q", s)
	}
}

func TestTypeClasses(t *testing.T) {
	if !TypeData.Link() || TypeData.Local() || !TypeDeliver.Local() || TypeDeliver.Link() {
		t.Error("Link/Local misclassify Data or Deliver")
	}
	if Type(0x08).Link() || Type(0x5f).Local() {
		t.Error("undefined types classified as defined")
	}
}

func TestPayloadAliasesBody(t *testing.T) {
	body := encodeBody(&Data{Seq: 1, Payload: []byte("abc")})
	var d Data
	if err := d.DecodeBody(body); err != nil {
		t.Fatal(err)
	}
	body[len(body)-2] = 'X' // the last byte is Corr
	if string(d.Payload) != "abX" {
		t.Fatalf("Payload = %q, want it to alias the body", d.Payload)
	}
	if cap(d.Payload) != len(d.Payload) {
		t.Fatalf("Payload cap %d > len %d: an append could overwrite the body", cap(d.Payload), len(d.Payload))
	}
}

func TestDecodeOverwritesAllFields(t *testing.T) {
	d := Data{Seq: 9, Flags: 9, To: 9, From: 9, TTL: 9, Group: "g", Payload: []byte("p")}
	if err := d.DecodeBody(encodeBody(&Data{})); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, Data{}) {
		t.Fatalf("stale fields after DecodeBody: %#v", d)
	}
	s := MembersSnapshot{Members: []Member{{Group: "x"}}}
	if err := s.DecodeBody(encodeBody(&MembersSnapshot{Version: 1})); err != nil || s.Members != nil {
		t.Fatalf("Members = %v, err %v; want nil", s.Members, err)
	}
}

func TestDataDecodeBodyNoAllocs(t *testing.T) {
	for _, group := range []string{"", "orders"} {
		body := encodeBody(&Data{Seq: 12345, Flags: FlagDurable, To: 7, From: 8, TTL: 1000, Group: group, Payload: make([]byte, 128)})
		var d Data
		if err := d.DecodeBody(body); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if err := d.DecodeBody(body); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Data.DecodeBody (group %q) allocates %v times per run, want 0", group, allocs)
		}
	}
}

func TestAppendFrameNoAllocs(t *testing.T) {
	m := &Data{Seq: 12345, Flags: FlagDurable, To: 7, From: 8, TTL: 1000, Group: "orders", Payload: make([]byte, 128)}
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendFrame(buf[:0], m)
	})
	if allocs != 0 {
		t.Errorf("AppendFrame(Data) allocates %v times per run, want 0", allocs)
	}
}
