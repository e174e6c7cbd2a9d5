package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// The local socket's place. Its directory is created (0750) if missing and
// must be owned by this daemon's user or root and not writable by group
// or others: no other user may put a socket of theirs at the path, or
// replace the daemon's. A socket already at the path is removed only if it
// is this user's and nobody listens on it (a daemon that died); another
// user's socket, or a file that is not a socket, is never touched: the
// daemon refuses to start and says whose it is.

// ErrSocketPlace is the refusal to start with a local socket whose place
// another user controls (errors.Is).
var ErrSocketPlace = errors.New("local socket refused")

func startLocal(d *Daemon, path string) (*localServer, error) {
	if err := prepareSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := clearStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("local socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local socket %s: chmod: %w", path, err)
	}
	s := &localServer{d: d, ln: ln, clients: map[*localClient]struct{}{}}
	s.wg.Go(s.acceptLoop)
	return s, nil
}

// prepareSocketDir creates dir if missing and checks it is this user's.
func prepareSocketDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("local socket directory %s: %w (set local.socket to a path in a directory this user may create, e.g. under $XDG_RUNTIME_DIR, or give it %s)",
			dir, err, dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("local socket directory: %w", err)
	}
	uid := os.Geteuid()
	if owner := ownerOf(fi); owner != uid && owner != 0 {
		return fmt.Errorf("%w: directory %s belongs to %s, not to this daemon's user (%s) or root: that user could replace the socket; use a directory of your own for local.socket",
			ErrSocketPlace, dir, userName(owner), userName(uid))
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w: directory %s is writable by group or others (mode %04o): another user could put a socket of theirs at the path; chmod go-w %s, or use another directory for local.socket",
			ErrSocketPlace, dir, perm, dir)
	}
	return nil
}

// clearStaleSocket removes the socket at path if this user's daemon that
// died left it; it refuses anything else there.
func clearStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local socket: %w", err)
	}
	owner, uid := ownerOf(fi), os.Geteuid()
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%w: %s exists and is not a socket (%v, owned by %s): remove it or set another local.socket",
			ErrSocketPlace, path, fi.Mode().Type(), userName(owner))
	}
	if owner != uid {
		return fmt.Errorf("%w: %s is a socket of %s, not of this daemon's user (%s); it was left alone: find out who made it (ls -l %s), have it removed, or set another local.socket",
			ErrSocketPlace, path, userName(owner), userName(uid), path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("local socket %s: another daemon is listening on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local socket %s: removing the stale socket: %w", path, err)
	}
	return nil
}

func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// userName names uid for a message: "uid 1001 (alice)".
func userName(uid int) string {
	s := "uid " + strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		s += " (" + u.Username + ")"
	}
	return s
}
