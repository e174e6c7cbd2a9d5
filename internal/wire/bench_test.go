package wire

import "testing"

func benchData() *Data {
	return &Data{Seq: 123456, Flags: FlagDurable, To: 42, From: 7, TTL: 30000, Group: "orders", Payload: make([]byte, 128)}
}

func BenchmarkAppendData(b *testing.B) {
	m := benchData()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(len(AppendFrame(nil, m))))
	for b.Loop() {
		buf = AppendFrame(buf[:0], m)
	}
}

func BenchmarkDecodeData(b *testing.B) {
	body := benchData().AppendBody(nil)
	var d Data
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := d.DecodeBody(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSend(b *testing.B) {
	body := (&Send{SendHeader: SendHeader{Req: 991, From: 3, Flags: 0, Group: "bench"}, Payload: make([]byte, 128)}).AppendBody(nil)
	var m Send
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := m.DecodeBody(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDeliver(b *testing.B) {
	body := (&Deliver{Mailbox: 9, FromCluster: "east", FromNode: "east-1", From: 3, Group: "bench", Payload: make([]byte, 128), Stream: 1, Seq: 123456}).AppendBody(nil)
	var m Deliver
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := m.DecodeBody(body); err != nil {
			b.Fatal(err)
		}
	}
}

// loopReader returns the same stream of frames again and again.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func BenchmarkReadFrame(b *testing.B) {
	var stream []byte
	for range 1000 {
		stream = AppendFrame(stream, benchData())
	}
	r := NewReader(&loopReader{data: stream}, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream) / 1000))
	for b.Loop() {
		if _, _, err := r.ReadFrame(); err != nil {
			b.Fatal(err)
		}
	}
}
