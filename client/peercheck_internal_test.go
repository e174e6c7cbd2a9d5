package client

import (
	"os"
	"testing"
)

// A directory is private to its owner when neither it nor any directory
// above it is writable by others than that owner and root.
func TestPrivateDirOwner(t *testing.T) {
	if fi, err := os.Stat("/"); err == nil && fi.Mode().Perm()&0o022 == 0 && ownerOf(fi) == 0 {
		if o, ok := privateDirOwner("/"); !ok || o != 0 {
			t.Errorf("/: %d %v, want root's", o, ok)
		}
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir+"/sub", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, ok := privateDirOwner(dir + "/sub"); ok {
		t.Errorf("%s/sub, under a world-writable directory: private", dir)
	}
}
