package spool

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, st := mustOpen(t, testOptions(dir))
	if st.StreamID == 0 || len(st.Pending) != 0 || len(st.NextSeq) != 0 || len(st.Received) != 0 || len(st.Problems) != 0 {
		t.Fatalf("fresh state: %+v", st)
	}
	stream := st.StreamID
	var want []Message
	for i := uint64(1); i <= 20; i++ {
		m := msg("west/w-1", i, int(i*13))
		if i%4 == 0 { // a message with headers: they come back with it
			m.Headers = []byte{1, 11, 't', 'r', 'a', 'c', 'e', 'p', 'a', 'r', 'e', 'n', 't', 1, byte(i)}
		}
		mustAppend(t, s, m)
		want = append(want, *m)
	}
	mustAppend(t, s, &Message{Peer: "north/n-1", Seq: 5}) // empty fields
	k1, k2 := RecvKey{"west/w-1", 77}, RecvKey{"north/n-1", 1}
	for _, kv := range []struct {
		k RecvKey
		v uint64
	}{{k1, 3}, {k2, 9}, {k1, 12}} {
		if err := setReceivedWait(s, kv.k, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, s)

	s, st = mustOpen(t, testOptions(dir))
	defer mustClose(t, s)
	if st.StreamID != stream {
		t.Errorf("StreamID %x after reopen, want %x", st.StreamID, stream)
	}
	sameMessages(t, st.Pending["west/w-1"], want)
	sameMessages(t, st.Pending["north/n-1"], []Message{{Peer: "north/n-1", Seq: 5}})
	if st.NextSeq["west/w-1"] != 21 || st.NextSeq["north/n-1"] != 6 || len(st.NextSeq) != 2 {
		t.Errorf("NextSeq %v", st.NextSeq)
	}
	if st.Received[k1] != 12 || st.Received[k2] != 9 || len(st.Received) != 2 {
		t.Errorf("Received %v", st.Received)
	}
	if len(st.Problems) != 0 {
		t.Errorf("Problems %v", st.Problems)
	}
}

// A MESSAGE record without headers is as it was before headers existed:
// the one with headers is it, then the header block's length and bytes.
func TestMessageRecordHeaders(t *testing.T) {
	m := msg("west/w-1", 3, 10)
	plain := encodeMessage(m)
	m.Headers = []byte{1, 1, 'a', 1, 'b'}
	with := encodeMessage(m)
	if want := append(append(bytes.Clone(plain), 5), m.Headers...); !bytes.Equal(with, want) {
		t.Fatalf("record with headers %x, want %x", with, want)
	}
	r, err := decodeRecord(with)
	if err != nil || !bytes.Equal(r.msg.Headers, m.Headers) {
		t.Fatalf("decoded %+v, %v", r.msg, err)
	}
	if r, err = decodeRecord(plain); err != nil || r.msg.Headers != nil {
		t.Fatalf("record without headers decoded %+v, %v", r.msg, err)
	}
}

func TestAckedNotRecovered(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, testOptions(dir))
	for i := uint64(1); i <= 10; i++ {
		mustAppend(t, s, msg("a/1", i, 8))
		mustAppend(t, s, msg("b/1", i, 8))
	}
	s.Ack("a/1", 6)
	s.Ack("a/1", 4) // older ack: no effect
	s.Ack("b/1", 10)
	mustClose(t, s)

	s, st := mustOpen(t, testOptions(dir))
	defer mustClose(t, s)
	if got := seqs(st.Pending["a/1"]); !equalU(got, seqRange(7, 10)) {
		t.Errorf("a/1 pending %v, want 7..10", got)
	}
	if _, ok := st.Pending["b/1"]; ok {
		t.Errorf("b/1 pending %v, want none", seqs(st.Pending["b/1"]))
	}
	if st.NextSeq["a/1"] != 11 || st.NextSeq["b/1"] != 11 {
		t.Errorf("NextSeq %v", st.NextSeq)
	}
}

func equalU(a, b []uint64) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func TestRotationDeletionKeepsMetadata(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.SegmentBytes = 1024
	s, _ := mustOpen(t, o)
	k := RecvKey{"east/e-1", 42}
	if err := setReceivedWait(s, k, 1234); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 60; i++ {
		mustAppend(t, s, msg("west/w-1", i, 100))
	}
	if n := len(segFiles(t, dir)); n < 5 {
		t.Fatalf("%d segment files after 60 appends of 100 bytes with SegmentBytes 1024, want >= 5", n)
	}
	if st := s.Stats(); st.Segments != len(segFiles(t, dir)) {
		t.Errorf("Stats.Segments %d, files %d", st.Segments, len(segFiles(t, dir)))
	}
	s.Ack("west/w-1", 60)
	mustAppend(t, s, msg("other/o-1", 1, 10)) // goes with or after the ack
	files := segFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("segment files after acking everything: %v, want only the active one", files)
	}
	st := s.Stats()
	if st.Segments != 1 || st.Bytes != fileSize(t, files[0]) {
		t.Errorf("Stats %+v, active file %d bytes", st, fileSize(t, files[0]))
	}
	mustClose(t, s)

	s, state := mustOpen(t, o)
	defer mustClose(t, s)
	if state.NextSeq["west/w-1"] != 61 || state.NextSeq["other/o-1"] != 2 {
		t.Errorf("NextSeq %v, want west/w-1:61 other/o-1:2", state.NextSeq)
	}
	if state.Received[k] != 1234 {
		t.Errorf("Received %v", state.Received)
	}
	if len(state.Pending) != 1 || len(state.Pending["other/o-1"]) != 1 {
		t.Errorf("Pending %v", state.Pending)
	}
}

func TestPayloadCopied(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, testOptions(dir))
	p := []byte("original payload")
	ch := make(chan error, 1)
	s.Append(&Message{Peer: "p/1", Seq: 1, Payload: p}, func(err error) { ch <- err })
	copy(p, "XXXXXXXXXXXXXXXX")
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	s, st := mustOpen(t, testOptions(dir))
	defer mustClose(t, s)
	if got := string(st.Pending["p/1"][0].Payload); got != "original payload" {
		t.Fatalf("recovered payload %q", got)
	}
}

func TestRecordsEncrypted(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, testOptions(dir))
	secret := []byte("this-payload-must-not-appear-on-disk")
	mustAppend(t, s, &Message{Peer: "visible-peer-name", Seq: 1, Group: "visible-group", Payload: secret})
	mustClose(t, s)
	for _, f := range segFiles(t, dir) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, needle := range [][]byte{secret, []byte("visible-peer-name"), []byte("visible-group")} {
			if bytes.Contains(b, needle) {
				t.Errorf("%s contains %q in clear", f, needle)
			}
		}
	}
}

func TestCloseFlushesAndIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, testOptions(dir))
	var mu sync.Mutex
	var results []error
	for i := uint64(1); i <= 200; i++ {
		s.Append(msg("p/1", i, 16), func(err error) {
			mu.Lock()
			results = append(results, err)
			mu.Unlock()
		})
	}
	s.Ack("p/1", 50)
	mustClose(t, s)
	mu.Lock()
	if len(results) != 200 {
		t.Fatalf("%d callbacks ran before Close returned, want 200", len(results))
	}
	for _, err := range results {
		if err != nil {
			t.Fatal(err)
		}
	}
	mu.Unlock()
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var got error
	s.Append(msg("p/1", 201, 1), func(err error) { got = err }) // synchronous
	if !errors.Is(got, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", got)
	}
	got = nil
	s.SetReceived(RecvKey{"x", 1}, 1, func(err error) { got = err })
	if !errors.Is(got, ErrClosed) {
		t.Fatalf("SetReceived after Close: %v, want ErrClosed", got)
	}
	s.Ack("p/1", 100) // ignored, must not panic

	s, st := mustOpen(t, testOptions(dir))
	defer mustClose(t, s)
	if got := seqs(st.Pending["p/1"]); !equalU(got, seqRange(51, 200)) {
		t.Fatalf("pending %v", got)
	}
}

func TestBusy(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, testOptions(dir))
	defer mustClose(t, s)
	// Hold the writer inside a callback so that the queue can only grow.
	entered, release := make(chan struct{}), make(chan struct{})
	s.Append(msg("p/1", 1, 1), func(err error) { close(entered); <-release })
	<-entered
	// While the writer is held, a callback that has run was called
	// synchronously by Append.
	var accepted []chan error
	for i := uint64(2); ; i++ {
		ch := make(chan error, 1)
		s.Append(msg("p/1", i, 1<<20), func(err error) { ch <- err })
		select {
		case err := <-ch:
			if !errors.Is(err, ErrBusy) {
				t.Fatalf("Append %d: %v, want ErrBusy", i, err)
			}
		default:
			accepted = append(accepted, ch)
			continue
		}
		break
	}
	if len(accepted) != 15 {
		t.Errorf("%d appends of 1 MiB queued before ErrBusy, want 15", len(accepted))
	}
	close(release)
	for _, ch := range accepted {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}

func TestTooLarge(t *testing.T) {
	s, _ := mustOpen(t, testOptions(t.TempDir()))
	defer mustClose(t, s)
	var got error
	s.Append(&Message{Peer: "p", Seq: 1, Payload: make([]byte, MaxQueuedBytes)}, func(err error) { got = err })
	if !errors.Is(got, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", got)
	}
}

func TestConcurrentAppendsGroupCommit(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, testOptions(dir))
	const goroutines, total = 8, 10000
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for g := range goroutines {
		wg.Go(func() {
			peer := fmt.Sprintf("c/n-%d", g)
			var done sync.WaitGroup
			for i := uint64(1); i <= total/goroutines; i++ {
				done.Add(1)
				s.Append(msg(peer, i, 64), func(err error) {
					if err != nil {
						errs <- err
					}
					done.Done()
				})
			}
			done.Wait()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Appends != total {
		t.Errorf("Stats.Appends %d, want %d", st.Appends, total)
	}
	if st.Fsyncs >= st.Appends || st.Fsyncs == 0 {
		t.Errorf("Stats.Fsyncs %d for %d appends: no group commit", st.Fsyncs, st.Appends)
	}
	if st.FsyncTotal <= 0 || st.LastFsync <= 0 {
		t.Errorf("fsync latency not measured: %+v", st)
	}
	t.Logf("%d appends, %d fsyncs, mean fsync %v", st.Appends, st.Fsyncs, st.FsyncTotal/max(1, time.Duration(st.Fsyncs)))
	mustClose(t, s)

	s, state := mustOpen(t, testOptions(dir))
	defer mustClose(t, s)
	for g := range goroutines {
		peer := fmt.Sprintf("c/n-%d", g)
		if got := seqs(state.Pending[peer]); !equalU(got, seqRange(1, total/goroutines)) {
			t.Fatalf("%s: %d pending, want 1..%d in order", peer, len(got), total/goroutines)
		}
	}
}

func TestPermissionsAndMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "spool")
	s, _ := mustOpen(t, testOptions(dir))
	mustAppend(t, s, msg("p", 1, 1))
	mustClose(t, s)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	for _, f := range segFiles(t, dir) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

func TestOpenErrors(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"no dir", Options{Key: testKey}, "Dir is required"},
		{"zero key", Options{Dir: base}, "Key is zero"},
		{"small segments", Options{Dir: base, Key: testKey, SegmentBytes: 10}, "SegmentBytes"},
		{"negative max", Options{Dir: base, Key: testKey, MaxBytes: -1}, "negative"},
		{"dir is a file", Options{Dir: file, Key: testKey}, file},
		{"under a file", Options{Dir: filepath.Join(file, "spool"), Key: testKey}, filepath.Join(file, "spool")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _, err := Open(c.o)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestDeriveKey(t *testing.T) {
	a, b := DeriveKey([]byte("one")), DeriveKey([]byte("two"))
	if a == b || a == ([32]byte{}) || a != DeriveKey([]byte("one")) {
		t.Fatal("DeriveKey is not a deterministic function of the secret")
	}
	want, err := hkdf.Key(sha256.New, []byte("one"), nil, "wandist/spool/v1", 32)
	if err != nil || !bytes.Equal(a[:], want) {
		t.Fatalf("DeriveKey differs from HKDF-SHA256 with info wandist/spool/v1")
	}
}
