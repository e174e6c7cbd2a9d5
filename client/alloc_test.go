package client

import (
	"bytes"
	"testing"

	"github.com/wandist/wandist/internal/wire"
)

// Payloads carved from one block are independent: appending to one does not
// write into the next, and each holds what was delivered.
func TestMessagePayloadsFromABlockAreIndependent(t *testing.T) {
	var a msgAlloc
	var msgs []*Message
	for i := range 500 { // several Message and payload blocks
		p := bytes.Repeat([]byte{byte(i)}, 1+i%200)
		msgs = append(msgs, newMessage(&a, &wire.Deliver{From: uint64(i), Payload: p}, nil))
	}
	for i, m := range msgs {
		if cap(m.Payload) != len(m.Payload) {
			t.Fatalf("message %d: payload capacity %d, length %d: an append would write into a neighbour", i, cap(m.Payload), len(m.Payload))
		}
		m.Payload = append(m.Payload, 0xff, 0xff)
	}
	for i, m := range msgs {
		want := append(bytes.Repeat([]byte{byte(i)}, 1+i%200), 0xff, 0xff)
		if m.From.Mailbox != uint64(i) || !bytes.Equal(m.Payload, want) {
			t.Fatalf("message %d: from %d, payload %x..., want from %d, payload %x...", i, m.From.Mailbox, m.Payload[:1], i, want[:1])
		}
	}
	if m := newMessage(&a, &wire.Deliver{}, nil); m.Payload != nil {
		t.Errorf("empty payload: %v, want nil", m.Payload)
	}
	big := make([]byte, payloadOwn)
	if m := newMessage(&a, &wire.Deliver{Payload: big}, nil); len(m.Payload) != payloadOwn || cap(m.Payload) > 2*payloadOwn {
		t.Errorf("large payload: len %d cap %d, want its own allocation of %d", len(m.Payload), cap(m.Payload), payloadOwn)
	}
}

func BenchmarkNewMessage(b *testing.B) {
	d := &wire.Deliver{FromCluster: "east", FromNode: "east-1", From: 3, Group: "bench", Payload: make([]byte, 128)}
	b.Run("blocks", func(b *testing.B) {
		var a msgAlloc
		b.ReportAllocs()
		for b.Loop() {
			newMessage(&a, d, nil)
		}
	})
	b.Run("one-by-one", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			newMessage(nil, d, nil)
		}
	})
}
