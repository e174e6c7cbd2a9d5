package spool

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestTornTail cuts the last segment at every byte offset inside its last
// record: Open must recover every earlier record, report the cut, truncate
// it, and take new appends.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	s, _ := mustOpen(t, testOptions(src))
	for i := uint64(1); i <= 5; i++ {
		mustAppend(t, s, msg("p/1", i, 40))
	}
	mustClose(t, s)
	files := segFiles(t, src)
	if len(files) != 1 {
		t.Fatalf("segments %v", files)
	}
	offs := recordOffsets(t, files[0])
	start, end := offs[len(offs)-1], fileSize(t, files[0])
	for cut := start; cut < end; cut++ {
		dir := copyDir(t, src)
		seg := filepath.Join(dir, filepath.Base(files[0]))
		if err := os.Truncate(seg, cut); err != nil {
			t.Fatal(err)
		}
		s, st := mustOpen(t, testOptions(dir))
		if got := seqs(st.Pending["p/1"]); !equalU(got, seqRange(1, 4)) {
			t.Fatalf("cut at %d: pending %v, want 1..4", cut, got)
		}
		if cut == start {
			if len(st.Problems) != 0 {
				t.Fatalf("cut at a record boundary: problems %v", st.Problems)
			}
		} else {
			if len(st.Problems) != 1 || st.Problems[0].File != seg || st.Problems[0].Offset != start ||
				!strings.Contains(st.Problems[0].Reason, "truncated") {
				t.Fatalf("cut at %d: problems %+v, want one at %s offset %d", cut, st.Problems, seg, start)
			}
			if size := fileSize(t, seg); size != start {
				t.Fatalf("cut at %d: segment is %d bytes after Open, want truncated to %d", cut, size, start)
			}
		}
		if st.NextSeq["p/1"] != 5 {
			t.Fatalf("cut at %d: NextSeq %d", cut, st.NextSeq["p/1"])
		}
		mustAppend(t, s, msg("p/1", 5, 3))
		mustClose(t, s)
		s, st = mustOpen(t, testOptions(dir))
		if got := seqs(st.Pending["p/1"]); !equalU(got, seqRange(1, 5)) || len(st.Problems) != 0 {
			t.Fatalf("cut at %d, reopened: pending %v problems %v", cut, got, st.Problems)
		}
		mustClose(t, s)
	}
}

// TestCorruptEarlierSegment flips a byte in the middle of the first segment:
// its records before the flip and every later segment are recovered.
func TestCorruptEarlierSegment(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.SegmentBytes = 1024
	s, _ := mustOpen(t, o)
	for i := uint64(1); i <= 30; i++ {
		mustAppend(t, s, msg("p/1", i, 100))
	}
	mustClose(t, s)
	files := segFiles(t, dir)
	if len(files) < 4 {
		t.Fatalf("want at least 4 segments, have %v", files)
	}
	offs := recordOffsets(t, files[0]) // checkpoint, then messages 1..k
	k := uint64(len(offs) - 1)
	if k < 4 {
		t.Fatalf("first segment holds %d messages", k)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b[offs[3]+60] ^= 0x40 // inside message 3's ciphertext
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}

	s, st := mustOpen(t, o)
	defer mustClose(t, s)
	want := append(seqRange(1, 2), seqRange(k+1, 30)...)
	if got := seqs(st.Pending["p/1"]); !equalU(got, want) {
		t.Fatalf("pending %v, want %v", got, want)
	}
	if len(st.Problems) != 1 || st.Problems[0].File != files[0] || st.Problems[0].Offset != offs[3] ||
		!strings.Contains(st.Problems[0].Reason, "CRC") {
		t.Fatalf("problems %+v, want a CRC mismatch in %s at %d", st.Problems, files[0], offs[3])
	}
	if st.NextSeq["p/1"] != 31 {
		t.Fatalf("NextSeq %d", st.NextSeq["p/1"])
	}
	if size := fileSize(t, files[0]); size != int64(len(b)) {
		t.Fatalf("an earlier segment was modified (%d bytes, was %d)", size, len(b))
	}
}

func TestWrongKey(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, testOptions(dir))
	mustAppend(t, s, msg("p/1", 1, 10))
	mustClose(t, s)
	before := snapshot(t, dir)

	o := testOptions(dir)
	o.Key = DeriveKey([]byte("another secret"))
	s, _, err := Open(o)
	if err == nil {
		s.Close()
		t.Fatal("Open with the wrong key succeeded")
	}
	var ce *CorruptError
	if !errors.Is(err, ErrKeyMismatch) || !errors.As(err, &ce) || ce.File == "" {
		t.Fatalf("error %v: want ErrKeyMismatch and a *CorruptError", err)
	}
	if !strings.Contains(err.Error(), "key does not match") {
		t.Fatalf("error %q does not say the key does not match", err)
	}
	if after := snapshot(t, dir); !maps2Equal(before, after) {
		t.Fatalf("files changed by a failed Open: %v -> %v", before, after)
	}
	// The right key still works.
	s, st := mustOpen(t, testOptions(dir))
	defer mustClose(t, s)
	if len(st.Pending["p/1"]) != 1 {
		t.Fatalf("pending %v", st.Pending)
	}
}

func snapshot(t *testing.T, dir string) map[string]int64 {
	out := map[string]int64{}
	for _, f := range segFiles(t, dir) {
		out[f] = fileSize(t, f)
	}
	return out
}

func maps2Equal(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestLeftoverSegments: an empty and a partial-header segment (a crash while
// rotating) are reported and removed; a garbage header is skipped.
func TestLeftoverSegments(t *testing.T) {
	dir := t.TempDir()
	s, _ := mustOpen(t, testOptions(dir))
	mustAppend(t, s, msg("p/1", 1, 10))
	mustClose(t, s)
	last := segFiles(t, dir)[0]
	empty := segPath(dir, 7)
	partial := segPath(dir, 8)
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{empty: nil, partial: b[:headerSize-5]} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a segment"), 0o600); err != nil {
		t.Fatal(err)
	}

	s, st := mustOpen(t, testOptions(dir))
	if len(st.Pending["p/1"]) != 1 {
		t.Fatalf("pending %v", st.Pending)
	}
	var files []string
	for _, p := range st.Problems {
		files = append(files, p.File)
	}
	slices.Sort(files)
	if !slices.Equal(files, []string{empty, partial}) {
		t.Fatalf("problems %+v", st.Problems)
	}
	mustAppend(t, s, msg("p/1", 2, 10))
	mustClose(t, s)
	for _, f := range []string{empty, partial} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not removed: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("an unrelated file was touched: %v", err)
	}
	s, st = mustOpen(t, testOptions(dir))
	defer mustClose(t, s)
	if got := seqs(st.Pending["p/1"]); !equalU(got, seqRange(1, 2)) || len(st.Problems) != 0 {
		t.Fatalf("pending %v problems %v", got, st.Problems)
	}
	// New segments are numbered after the leftovers.
	if files := segFiles(t, dir); filepath.Base(files[len(files)-1]) <= filepath.Base(partial) {
		t.Fatalf("segments %v", files)
	}
}

// TestCrashCopy: without Close, the directory as kill -9 would leave it holds
// every message whose done(nil) was called, even while rotations go on.
func TestCrashCopy(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.SegmentBytes = 2048
	s, _ := mustOpen(t, o)
	defer mustClose(t, s)
	k := RecvKey{"src/1", 9}

	var mu sync.Mutex
	durable := map[uint64]bool{}
	var recvDurable uint64
	reached := make(chan struct{})
	stop := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := uint64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ch := make(chan error, 1)
			s.Append(msg("p/1", i, 50), func(err error) {
				if err == nil {
					mu.Lock()
					durable[i] = true
					if len(durable) == 300 {
						once.Do(func() { close(reached) })
					}
					mu.Unlock()
				}
				ch <- err
			})
			if i%50 == 0 {
				s.SetReceived(k, i, func(err error) {
					if err == nil {
						mu.Lock()
						recvDurable = max(recvDurable, i)
						mu.Unlock()
					}
				})
			}
			if i%4 == 0 { // keep a few appends in flight while copying
				if err := <-ch; err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	<-reached
	mu.Lock()
	want := make(map[uint64]bool, len(durable))
	for seq := range durable {
		want[seq] = true
	}
	wantRecv := recvDurable
	mu.Unlock()
	crashed := copyDir(t, dir) // appends continue during the copy
	close(stop)
	wg.Wait()

	s2, st := mustOpen(t, Options{Dir: crashed, Key: testKey, SegmentBytes: 2048})
	defer mustClose(t, s2)
	got := map[uint64]bool{}
	for _, m := range st.Pending["p/1"] {
		got[m.Seq] = true
	}
	for seq := range want {
		if !got[seq] {
			t.Fatalf("message %d was reported durable and is not recovered (%d of %d recovered)", seq, len(got), len(want))
		}
	}
	if st.Received[k] < wantRecv {
		t.Fatalf("Received %d, want >= %d", st.Received[k], wantRecv)
	}
	t.Logf("%d durable at copy time, %d recovered, problems %v", len(want), len(got), st.Problems)
}
