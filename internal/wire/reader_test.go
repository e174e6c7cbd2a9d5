package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func header(version byte, t Type, flags uint16, length uint32) []byte {
	return []byte{version, byte(t), byte(flags >> 8), byte(flags), byte(length >> 24), byte(length >> 16), byte(length >> 8), byte(length)}
}

func TestReaderMultipleFrames(t *testing.T) {
	msgs := sampleMessages()
	var stream []byte
	for _, m := range msgs {
		stream = AppendFrame(stream, m)
	}
	// OneByteReader makes every frame straddle many reads.
	for name, src := range map[string]io.Reader{
		"bytes":   bytes.NewReader(stream),
		"onebyte": iotest.OneByteReader(bytes.NewReader(stream)),
		"bufio":   bufio.NewReaderSize(bytes.NewReader(stream), 16),
	} {
		t.Run(name, func(t *testing.T) {
			r := NewReader(src, 0)
			var off int64
			for i, want := range msgs {
				if r.Offset() != off {
					t.Fatalf("frame %d: Offset() = %d, want %d", i, r.Offset(), off)
				}
				got, err := r.ReadMessage()
				if err != nil {
					t.Fatalf("frame %d (%v): %v", i, want.Type(), err)
				}
				if r.FrameOffset() != off {
					t.Fatalf("frame %d: FrameOffset() = %d, want %d", i, r.FrameOffset(), off)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("frame %d:\n got %#v\nwant %#v", i, got, want)
				}
				off += int64(len(AppendFrame(nil, want)))
			}
			if _, _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("after the last frame: err = %v, want io.EOF", err)
			}
			if r.Offset() != int64(len(stream)) {
				t.Fatalf("Offset() = %d, want %d", r.Offset(), len(stream))
			}
		})
	}
}

func TestReaderEOF(t *testing.T) {
	frame := AppendFrame(nil, &Data{Seq: 1, Group: "g", Payload: []byte("payload")})
	if _, _, err := NewReader(bytes.NewReader(nil), 0).ReadFrame(); err != io.EOF {
		t.Errorf("empty stream: err = %v, want io.EOF", err)
	}
	for n := 1; n < len(frame); n++ {
		r := NewReader(bytes.NewReader(frame[:n]), 0)
		if _, _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
			t.Errorf("stream cut at %d/%d: err = %v, want io.ErrUnexpectedEOF", n, len(frame), err)
		}
		if r.Offset() != int64(n) {
			t.Errorf("stream cut at %d: Offset() = %d", n, r.Offset())
		}
	}
	// Stream cut right after a header announcing a body.
	r := NewReader(bytes.NewReader(header(Version, TypePing, 0, 1)), 0)
	if _, _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Errorf("stream cut after header: err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReaderPassesOtherErrors(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(iotest.ErrReader(boom), 0)
	if _, _, err := r.ReadFrame(); err != boom {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func TestReaderEmptyBody(t *testing.T) {
	r := NewReader(bytes.NewReader([]byte{Version, byte(TypeReady), 0, 0, 0, 0, 0, 0}), 0)
	typ, body, err := r.ReadFrame()
	if err != nil || typ != TypeReady || len(body) != 0 {
		t.Fatalf("ReadFrame = %v, %q, %v", typ, body, err)
	}
}

func frameError(t *testing.T, err error, sentinel error) *FrameError {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	var fe *FrameError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %#v, want a *FrameError", err)
	}
	return fe
}

func TestReaderBadHeaders(t *testing.T) {
	good := AppendFrame(nil, &Ping{Echo: 1}) // 9 bytes: the bad header is at offset 9
	tests := []struct {
		name     string
		hdr      []byte
		sentinel error
		want     string
	}{
		{"version 0", header(0, TypePing, 0, 1), ErrBadVersion, "frame at offset 9 (type Ping): version 0, want 1"},
		{"version 2", header(2, TypePing, 0, 1), ErrBadVersion, "version 2, want 1"},
		{"flags", header(Version, TypeData, 0x8000, 1), ErrBadFlags, "frame at offset 9 (type Data): flags 0x8000, want 0"},
		{"low flag", header(Version, TypeData, 1, 1), ErrBadFlags, "flags 0x0001"},
		{"too large", header(Version, TypeData, 0, 99999999), ErrFrameTooLarge,
			"frame at offset 9 (type Data): body length 99999999 exceeds limit 1114112"},
		{"max length", header(Version, TypeData, 0, 0xffffffff), ErrFrameTooLarge, "body length 4294967295 exceeds limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stream []byte
			stream = append(stream, good...)
			stream = append(stream, tt.hdr...)
			stream = append(stream, good...)
			r := NewReader(bytes.NewReader(stream), 0)
			if _, _, err := r.ReadFrame(); err != nil {
				t.Fatalf("first frame: %v", err)
			}
			_, _, err := r.ReadFrame()
			fe := frameError(t, err, tt.sentinel)
			if fe.Offset != 9 || r.FrameOffset() != 9 {
				t.Errorf("Offset = %d, FrameOffset() = %d, want 9", fe.Offset, r.FrameOffset())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
			if _, _, err2 := r.ReadFrame(); err2 != err {
				t.Errorf("error not sticky: next ReadFrame = %v", err2)
			}
		})
	}
}

func TestReaderLimit(t *testing.T) {
	body := bytes.Repeat([]byte{'x'}, 100)
	frame := append(header(Version, TypeData, 0, 100), body...)
	if _, b, err := NewReader(bytes.NewReader(frame), 100).ReadFrame(); err != nil || len(b) != 100 {
		t.Fatalf("body at the limit: %d bytes, %v", len(b), err)
	}
	_, _, err := NewReader(bytes.NewReader(frame), 99).ReadFrame()
	frameError(t, err, ErrFrameTooLarge)
}

// A header announcing a huge body is rejected before anything is allocated
// for it.
func TestReaderHugeLengthNoAllocation(t *testing.T) {
	stream := header(Version, TypeData, 0, 0xfffffff0)
	// TotalAlloc is process-wide: a runtime or race-detector goroutine may
	// allocate during one attempt. The least of several attempts is the
	// Reader's own cost (a CI run once saw 9,864 bytes in a single try).
	least := uint64(math.MaxUint64)
	for range 20 {
		r := NewReader(bytes.NewReader(stream), 1<<31)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := r.ReadFrame()
		runtime.ReadMemStats(&after)
		frameError(t, err, ErrFrameTooLarge)
		if r.buf != nil {
			t.Fatalf("body buffer allocated: cap %d", cap(r.buf))
		}
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	// The only allocation allowed is the small read buffer, made at the
	// first read, and the Reader's own small structs.
	if least > smallReadBuffer+512 {
		t.Errorf("rejecting the frame allocated %d bytes", least)
	}
}

// A header announcing a large (allowed) body that never arrives makes the
// Reader grow its buffer only as bytes arrive.
func TestReaderGrowsWithData(t *testing.T) {
	stream := append(header(Version, TypeData, 0, DefaultMaxBody), make([]byte, 1000)...)
	r := NewReader(bytes.NewReader(stream), 0)
	if _, _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if cap(r.buf) > growStep {
		t.Errorf("buffer grew to %d bytes for 1000 bytes received", cap(r.buf))
	}
}

func TestReaderReusesBuffer(t *testing.T) {
	big := &Data{Seq: 1, Payload: bytes.Repeat([]byte{'a'}, 300000)}
	small := &Data{Seq: 2, Payload: []byte("b")}
	var stream []byte
	stream = AppendFrame(stream, big)
	stream = AppendFrame(stream, small)
	stream = AppendFrame(stream, big)
	r := NewReader(bytes.NewReader(stream), 0)
	var d Data
	for i, want := range []*Data{big, small, big} {
		typ, body, err := r.ReadFrame()
		if err != nil || typ != TypeData {
			t.Fatalf("frame %d: %v %v", i, typ, err)
		}
		if err := d.DecodeBody(body); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !reflect.DeepEqual(&d, want) {
			t.Fatalf("frame %d differs", i)
		}
		if cap(r.buf) > DefaultMaxBody {
			t.Fatalf("buffer cap %d beyond the limit", cap(r.buf))
		}
	}
	// The third frame fits the buffer grown for the first: no allocation.
	last := AppendFrame(nil, big)
	src := bytes.NewReader(last)
	r = NewReader(src, 0)
	r.buf = make([]byte, 0, len(last))
	allocs := testing.AllocsPerRun(10, func() {
		src.Reset(last)
		r.br.(*source).reset(src)
		if _, _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ReadFrame into a large enough buffer allocates %v times", allocs)
	}
}

func TestReaderUnknownTypeAndMalformed(t *testing.T) {
	var stream []byte
	stream = AppendFrame(stream, &Ping{Echo: 5})
	stream = append(stream, header(Version, Type(0x99), 0, 2)...)
	stream = append(stream, 1, 2)
	r := NewReader(bytes.NewReader(stream), 0)
	if _, err := r.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	_, err := r.ReadMessage()
	fe := frameError(t, err, ErrUnknownType)
	if fe.Offset != 9 || fe.Type != 0x99 {
		t.Errorf("FrameError = %+v", fe)
	}
	if want := "frame at offset 9 (type Type(0x99)): unknown frame type"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}

	stream = append(header(Version, TypeData, 0, 1), 0x80)
	_, err = NewReader(bytes.NewReader(stream), 0).ReadMessage()
	fe = frameError(t, err, ErrMalformed)
	if fe.Offset != 0 || !strings.Contains(err.Error(), "frame at offset 0 (type Data): Data.Seq: truncated varint") {
		t.Errorf("err = %v", err)
	}
}

func TestNewReaderKeepsBufio(t *testing.T) {
	br := bufio.NewReaderSize(bytes.NewReader(nil), 1<<17)
	if r := NewReader(br, 0); r.br != br {
		t.Error("NewReader wrapped a *bufio.Reader")
	}
	if r := NewReader(bytes.NewReader(nil), 0); r.br.(*source) == nil {
		t.Errorf("plain reader buffered by %T", r.br)
	}
}

// Buffered counts the bytes read from the stream that no ReadFrame has
// returned yet, whatever the Reader buffers with.
func TestReaderBuffered(t *testing.T) {
	one := AppendFrame(nil, &Ping{Echo: 1})
	two := append(append([]byte(nil), one...), one...)
	for name, src := range map[string]func() io.Reader{
		"source": func() io.Reader { return bytes.NewReader(two) },
		"bufio":  func() io.Reader { return bufio.NewReader(bytes.NewReader(two)) },
	} {
		r := NewReader(src(), 0)
		if n := r.Buffered(); n != 0 {
			t.Errorf("%s: %d buffered before the first read", name, n)
		}
		if _, _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
		if n := r.Buffered(); n != len(one) {
			t.Errorf("%s: %d buffered after the first of two frames, want %d", name, n, len(one))
		}
		if _, _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
		if n := r.Buffered(); n != 0 {
			t.Errorf("%s: %d buffered after both frames", name, n)
		}
	}
}
