package spool

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// A second spool on a directory that an open spool holds is refused at
// once, naming the lock file, and leaves the first one working; once the
// first is closed the directory opens again.
func TestSecondOpenOfADirectoryRefused(t *testing.T) {
	dir := t.TempDir()
	first, _ := mustOpen(t, testOptions(dir))
	if _, _, err := Open(testOptions(dir)); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(dir, lockName)) {
		t.Fatalf("second Open of %s: %v, want ErrLocked naming the lock file", dir, err)
	}
	done := make(chan error, 1)
	first.Append(&Message{Peer: "c/n", Seq: 1, Payload: []byte("still mine")}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatalf("the first spool after the refused Open: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, st := mustOpen(t, testOptions(dir))
	defer again.Close()
	if p := st.Pending["c/n"]; len(p) != 1 || string(p[0].Payload) != "still mine" {
		t.Fatalf("reopened after Close: %+v", st.Pending)
	}
}
