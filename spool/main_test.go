package spool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testKey = DeriveKey([]byte("spool test secret"))

func testOptions(dir string) Options {
	return Options{Dir: dir, Key: testKey}
}

func mustOpen(t testing.TB, o Options) (*Spool, *State) {
	t.Helper()
	s, st, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, st
}

func mustClose(t testing.TB, s *Spool) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// appendWait appends m and waits for its done callback.
func appendWait(s *Spool, m *Message) error {
	ch := make(chan error, 1)
	s.Append(m, func(err error) { ch <- err })
	return <-ch
}

func mustAppend(t testing.TB, s *Spool, m *Message) {
	t.Helper()
	if err := appendWait(s, m); err != nil {
		t.Fatalf("Append %s/%d: %v", m.Peer, m.Seq, err)
	}
}

func setReceivedWait(s *Spool, k RecvKey, seq uint64) error {
	ch := make(chan error, 1)
	s.SetReceived(k, seq, func(err error) { ch <- err })
	return <-ch
}

// msg returns a message whose fields all derive from peer and seq.
func msg(peer string, seq uint64, payloadLen int) *Message {
	p := make([]byte, payloadLen)
	for i := range p {
		p[i] = byte(seq) + byte(i)
	}
	return &Message{Peer: peer, Seq: seq, Flags: seq % 3, To: seq * 7, From: seq + 1,
		Group: "g" + peer, Deadline: int64(seq) * 1000, Payload: p}
}

// seqs returns the Seq of each message.
func seqs(ms []Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// segFiles returns the segment files of dir, in order.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// copyDir copies the regular files of src into a new directory, as kill -9
// would leave them.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// recordOffsets parses the framing of a segment file and returns the offset
// of each record (the first is the checkpoint).
func recordOffsets(t testing.TB, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := int64(headerSize); off+prefixSize <= int64(len(b)); {
		offs = append(offs, off)
		off += prefixSize + int64(binary.LittleEndian.Uint32(b[off:]))
	}
	return offs
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// sameMessages fails unless got and want hold equal messages.
func sameMessages(t testing.TB, got, want []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages %v, want %d %v", len(got), seqs(got), len(want), seqs(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Peer != w.Peer || g.Seq != w.Seq || g.Flags != w.Flags || g.To != w.To || g.From != w.From ||
			g.Group != w.Group || g.Deadline != w.Deadline || !bytes.Equal(g.Payload, w.Payload) || !bytes.Equal(g.Headers, w.Headers) {
			t.Fatalf("message %d: got %s, want %s", i, fmtMsg(g), fmtMsg(w))
		}
	}
}

func fmtMsg(m Message) string {
	return fmt.Sprintf("{%s %d %d %d %d %q %d %x %x}", m.Peer, m.Seq, m.Flags, m.To, m.From, m.Group, m.Deadline, m.Payload, m.Headers)
}
