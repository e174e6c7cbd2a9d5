package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// A batch frame extended payload by payload in a write buffer, between
// other frames, reads back as the same payloads in order.
func TestBatchExtendedInPlace(t *testing.T) {
	var buf []byte
	buf = AppendFrame(buf, &Sync{Req: 1})
	first := &Send{SendHeader: SendHeader{Req: 2, Flags: FlagQuiet, Group: "g"}, Payload: []byte("p0")}
	hdr := SendBatchOf(first)
	start := len(buf)
	hdr.Payloads = Batch(nil).Append(first.Payload)
	buf = hdr.AppendFrame(buf)
	var want [][]byte
	want = append(want, first.Payload)
	for i := 1; i < 600; i++ {
		// Every length from 0 to 299 (one- and two-byte lengths, and
		// those around 128 and 256), then a few large ones.
		p := bytes.Repeat([]byte{byte(i)}, i%300)
		if i%300 == 0 {
			p = nil
		}
		if i%97 == 0 {
			p = bytes.Repeat([]byte{byte(i)}, 16383+i%3) // around the two-byte limit
		}
		buf = AppendBatchPayload(buf, start, p)
		want = append(want, p)
	}
	buf = AppendFrame(buf, &Sync{Req: 3})

	r := NewReader(bytes.NewReader(buf), 1<<24)
	ms := []Message{}
	for {
		m, err := r.ReadMessage()
		if err != nil {
			break
		}
		ms = append(ms, m)
	}
	if len(ms) != 3 {
		t.Fatalf("read %d frames, want 3", len(ms))
	}
	b, ok := ms[1].(*SendBatch)
	if _, err := Decode(TypeSendBatch, AppendFrame(nil, b)[HeaderSize:]); err != nil {
		t.Fatalf("the batch again: %v", err)
	}
	if !ok || b.Req != 2 || b.Group != "g" || b.Flags != FlagQuiet {
		t.Fatalf("second frame %#v, want the batch", ms[1])
	}
	if n := b.Payloads.Count(); n != len(want) {
		t.Fatalf("%d payloads, want %d", n, len(want))
	}
	i := 0
	for p := range b.Payloads.All() {
		if !bytes.Equal(p, want[i]) {
			t.Fatalf("payload %d = %q, want %q", i, p, want[i])
		}
		i++
	}
	s := b.Send([]byte("x"))
	if !b.SameHeader(&s) || string(s.Payload) != "x" || s.Group != "g" {
		t.Fatalf("Send(x) = %+v: not the batch's header", s)
	}
	s.Corr = 1
	if b.SameHeader(&s) {
		t.Fatal("a request (Corr set) has the batch's header")
	}
}

func TestBatchWithoutPayloadRefused(t *testing.T) {
	body := (&SendBatch{SendHeader: SendHeader{Req: 1, Flags: FlagQuiet, Group: "g"}}).AppendBody(nil)
	_, err := Decode(TypeSendBatch, body)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "SendBatch.Payloads: no payload") {
		t.Fatalf("empty batch: %v", err)
	}
}
