package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockName is the file in a spool directory that an open spool holds an
// exclusive flock on: two spools in one directory would each truncate and
// delete the other's segments. The kernel drops the lock when the process
// dies, kill -9 included, so a restart never finds a stale one.
const lockName = "LOCK"

// lockDir takes the directory's lock, or fails at once with an error
// wrapping ErrLocked if another spool (in this process or another) holds it.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by another spool (another wandistd with the same spool.dir?)", ErrLocked, path)
		}
		return nil, fmt.Errorf("spool: lock %s: %w", path, err)
	}
	return f, nil
}
