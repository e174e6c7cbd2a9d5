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
