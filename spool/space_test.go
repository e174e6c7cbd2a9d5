package spool

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
)

// segBytesOnDisk sums the sizes of the segment files in dir.
func segBytesOnDisk(t *testing.T, dir string) int64 {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// A spool on a small filesystem (smaller than one segment, as a small
// tmpfs): messages are refused with ErrFull before the disk is full, the
// acks still fit, and once the messages are acknowledged space comes back
// and messages are accepted again (found by the chaos suite:
// spool-disk-full never recovered).
func TestSmallFilesystemFillsAndRecovers(t *testing.T) {
	dir := t.TempDir()
	const fsSize = 384 << 10
	h := hooks{statfs: func(string) (int64, int64, error) {
		return fsSize - segBytesOnDisk(t, dir), fsSize, nil
	}}
	s, _, err := open(testOptions(dir), h)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	accepted := uint64(0)
	var full error
	for seq := uint64(1); seq <= 1000; seq++ {
		if err := appendWait(s, msg("west/w1", seq, 1024)); err != nil {
			full = err
			break
		}
		accepted = seq
	}
	if !errors.Is(full, ErrFull) {
		t.Fatalf("after %d messages: %v, want ErrFull", accepted, full)
	}
	if used := segBytesOnDisk(t, dir); used > fsSize-reserveFor(fsSize)+2048 || accepted < 100 {
		t.Fatalf("%d messages accepted, %d bytes used of %d: the reserve of %d was not kept", accepted, used, fsSize, reserveFor(fsSize))
	}
	if st := s.Stats(); st.Err != "" {
		t.Fatalf("a full filesystem broke the spool: %s", st.Err)
	}
	s.Ack("west/w1", accepted)
	if err := appendWait(s, msg("west/w1", accepted+1, 1024)); err != nil {
		t.Fatalf("after every message was acknowledged: %v", err)
	}
	if used := segBytesOnDisk(t, dir); used > 64<<10 {
		t.Fatalf("%d bytes still on disk after the acks: acknowledged records were not freed", used)
	}
}

// noSpace fails writes with ENOSPC while set.
type noSpace struct {
	segFile
	full *atomic.Bool
}

func (f noSpace) WriteAt(b []byte, off int64) (int, error) {
	if f.full.Load() {
		return 0, &os.PathError{Op: "write", Path: "seg", Err: syscall.ENOSPC}
	}
	return f.segFile.WriteAt(b, off)
}

// ENOSPC from the filesystem (filled by someone else) is ErrFull for the
// message, not a broken spool, and appends work again once there is room.
func TestENOSPCIsFullNotBroken(t *testing.T) {
	var full atomic.Bool
	s, _, err := open(testOptions(t.TempDir()), hooks{wrapFile: func(f segFile) segFile { return noSpace{f, &full} }})
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, s)
	mustAppend(t, s, msg("p", 1, 100))
	full.Store(true)
	if err := appendWait(s, msg("p", 2, 100)); !errors.Is(err, ErrFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full filesystem: %v, want ErrFull wrapping ENOSPC", err)
	}
	if st := s.Stats(); st.Err != "" {
		t.Fatalf("ENOSPC broke the spool: %s", st.Err)
	}
	full.Store(false)
	mustAppend(t, s, msg("p", 2, 100))
}
