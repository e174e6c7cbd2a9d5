package spool

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
)

// fillUntilFull appends 100-byte messages to p/1 from seq until one fails
// with ErrFull, and returns the seq of that one.
func fillUntilFull(t *testing.T, s *Spool, seq uint64) uint64 {
	t.Helper()
	for ; seq < 10000; seq++ {
		err := appendWait(s, msg("p/1", seq, 100))
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrFull) {
			t.Fatalf("Append %d: %v, want nil or ErrFull", seq, err)
		}
		return seq
	}
	t.Fatal("never full")
	return 0
}

func TestMaxBytes(t *testing.T) {
	for _, c := range []struct {
		name         string
		max, segment int64
	}{
		{"many segments", 4096, 1024},
		{"one segment larger than MaxBytes", 2048, 1 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{Dir: dir, Key: testKey, MaxBytes: c.max, SegmentBytes: c.segment}
			s, _ := mustOpen(t, o)
			defer mustClose(t, s)
			full := fillUntilFull(t, s, 1)
			if st := s.Stats(); st.Bytes > c.max {
				t.Fatalf("Stats.Bytes %d > MaxBytes %d", st.Bytes, c.max)
			}
			// Receive positions count too: a few small ones may still fit.
			for i := uint64(1); ; i++ {
				err := setReceivedWait(s, RecvKey{"x", 1}, i)
				if errors.Is(err, ErrFull) {
					break
				}
				if err != nil || i > 10 {
					t.Fatalf("SetReceived %d on a full spool: %v, want ErrFull within 10", i, err)
				}
			}
			before := len(segFiles(t, dir))
			s.Ack("p/1", full-1)
			for seq := full; seq < full+3; seq++ {
				mustAppend(t, s, msg("p/1", seq, 100))
			}
			if st := s.Stats(); st.Bytes > c.max || st.Segments != len(segFiles(t, dir)) || st.Segments > before {
				t.Fatalf("after acks: Stats %+v, %d files (%d before)", st, len(segFiles(t, dir)), before)
			}
		})
	}
}

// faultFile injects write and fsync failures into a segment file.
type faultFile struct {
	segFile
	failWrite *atomic.Bool // next WriteAt writes half and fails with ENOSPC
	failSync  *atomic.Bool // every Sync fails with EIO
}

func (f faultFile) WriteAt(b []byte, off int64) (int, error) {
	if f.failWrite.CompareAndSwap(true, false) {
		n, _ := f.segFile.WriteAt(b[:len(b)/2], off)
		return n, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
	}
	return f.segFile.WriteAt(b, off)
}

func (f faultFile) Sync() error {
	if f.failSync.Load() {
		return &os.PathError{Op: "sync", Path: "segment", Err: syscall.EIO}
	}
	return f.segFile.Sync()
}

func openFaulty(t *testing.T, o Options) (*Spool, *atomic.Bool, *atomic.Bool) {
	t.Helper()
	var w, sy atomic.Bool
	s, _, err := open(o, hooks{wrapFile: func(f segFile) segFile {
		return faultFile{segFile: f, failWrite: &w, failSync: &sy}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s, &w, &sy
}

func TestWriteErrorRecovers(t *testing.T) {
	dir := t.TempDir()
	s, failWrite, _ := openFaulty(t, testOptions(dir))
	mustAppend(t, s, msg("p/1", 1, 100))
	seg := segFiles(t, dir)[0]
	size := fileSize(t, seg)

	failWrite.Store(true)
	err := appendWait(s, msg("p/1", 2, 100))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append during ENOSPC: %v, want an error wrapping ENOSPC", err)
	}
	if got := fileSize(t, seg); got != size {
		t.Fatalf("segment is %d bytes after the failed write, want truncated back to %d", got, size)
	}
	mustAppend(t, s, msg("p/1", 3, 100))
	if st := s.Stats(); st.Err != "" || st.Bytes != fileSize(t, seg) {
		t.Fatalf("Stats %+v, file %d bytes", st, fileSize(t, seg))
	}
	mustClose(t, s)

	s, st := mustOpen(t, testOptions(dir))
	defer mustClose(t, s)
	if got := seqs(st.Pending["p/1"]); !equalU(got, []uint64{1, 3}) || len(st.Problems) != 0 {
		t.Fatalf("pending %v, problems %v", got, st.Problems)
	}
}

func TestFsyncErrorBreaks(t *testing.T) {
	dir := t.TempDir()
	s, _, failSync := openFaulty(t, testOptions(dir))
	mustAppend(t, s, msg("p/1", 1, 10))
	failSync.Store(true)
	err := appendWait(s, msg("p/1", 2, 10))
	if !errors.Is(err, ErrBroken) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with a failing fsync: %v, want ErrBroken wrapping EIO", err)
	}
	failSync.Store(false) // even if fsync would work again, the spool stays broken
	var got error
	s.Append(msg("p/1", 3, 10), func(err error) { got = err })
	if !errors.Is(got, ErrBroken) {
		t.Fatalf("Append after the failure: %v, want ErrBroken at once", got)
	}
	if err := setReceivedWait(s, RecvKey{"x", 1}, 1); !errors.Is(err, ErrBroken) {
		t.Fatalf("SetReceived after the failure: %v", err)
	}
	if st := s.Stats(); st.Err == "" {
		t.Fatal("Stats.Err is empty on a broken spool")
	}
	if err := s.Close(); !errors.Is(err, ErrBroken) {
		t.Fatalf("Close: %v, want ErrBroken", err)
	}
	if err := s.Close(); !errors.Is(err, ErrBroken) {
		t.Fatalf("second Close: %v, want ErrBroken", err)
	}
}
