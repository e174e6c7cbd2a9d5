package frame

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestForwardKeepsFrames(t *testing.T) {
	var in []byte
	bodies := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte("z"), 70000)}
	for _, b := range bodies {
		in = Append(in, b)
	}
	var out bytes.Buffer
	w := bufio.NewWriterSize(&out, 4096)
	if err := Forward(w, NewReader(bytes.NewReader(in), 4096)); !errors.Is(err, io.EOF) {
		t.Fatalf("Forward: %v, want io.EOF at the end", err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatal("forwarded bytes differ from the input")
	}
	r := NewReader(&out, 512)
	for i, want := range bodies {
		got, err := r.Read()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes, err %v", i, len(got), err)
		}
	}
}

func TestReadRejects(t *testing.T) {
	bad := Append(nil, []byte("x"))
	bad[0] = 9
	if _, err := NewReader(bytes.NewReader(bad), 64).Read(); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("wrong version: %v", err)
	}
	cut := Append(nil, []byte("hello"))[:10]
	if _, err := NewReader(bytes.NewReader(cut), 64).Read(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated body: %v", err)
	}
}
