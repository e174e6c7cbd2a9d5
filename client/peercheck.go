package client

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Before its hello (and the token in it) the SDK checks who serves the
// socket: the user of the process listening on it (SO_PEERCRED, on Linux)
// and the owner of the socket file. Either must be a user the client
// trusts: Options.ExpectDaemonUID (or $WANDIST_DAEMON_UID) when set, and
// no one else; otherwise this process's own user, root, or the user who
// owns the socket's directory when no one else but root may write to it
// or to any directory above it (a system daemon's /run/wandist, 0750). A
// socket another user took first in a shared directory (/tmp) is refused
// with ErrForeignSocket, before anything is sent to it.

// ErrForeignSocket is the refusal to talk to a socket served by a user
// the client does not trust; the error is a *ForeignSocketError.
var ErrForeignSocket = errors.New("wandist: socket served by an unexpected user")

// ForeignSocketError says whose the refused socket is. It matches
// ErrForeignSocket with errors.Is.
type ForeignSocketError struct {
	Path     string
	UID      int    // the user serving it (or owning the socket file)
	What     string // "the process listening on it" or "the socket file"
	Expected []int  // the users the client trusts
}

func (e *ForeignSocketError) Error() string {
	return fmt.Sprintf("%v: %s: %s belongs to uid %d, not to %s; nothing was sent to it. If that user runs your daemon, set Options.ExpectDaemonUID (or WANDIST_DAEMON_UID) to %d",
		ErrForeignSocket, e.Path, e.What, e.UID, uidList(e.Expected), e.UID)
}

// Unwrap returns ErrForeignSocket.
func (e *ForeignSocketError) Unwrap() error { return ErrForeignSocket }

func uidList(uids []int) string {
	s := ""
	for i, u := range uids {
		switch {
		case i == 0:
		case i == len(uids)-1:
			s += " or "
		default:
			s += ", "
		}
		s += "uid " + strconv.Itoa(u)
	}
	return s
}

// daemonUIDs returns the users the client trusts to serve path.
func (c *Client) daemonUIDs(path string) ([]int, error) {
	if u := c.opts.ExpectDaemonUID; u != 0 {
		return []int{u}, nil
	}
	if env := os.Getenv("WANDIST_DAEMON_UID"); env != "" {
		u, err := strconv.Atoi(env)
		if err != nil || u < 0 {
			return nil, fmt.Errorf("%w: WANDIST_DAEMON_UID=%q is not a user id", ErrBadRequest, env)
		}
		return []int{u}, nil
	}
	uids := []int{os.Geteuid()}
	if uids[0] != 0 {
		uids = append(uids, 0)
	}
	if o, ok := privateDirOwner(filepath.Dir(path)); ok && o != uids[0] && o != 0 {
		uids = append(uids, o)
	}
	return uids, nil
}

// checkPeer refuses conn, connected to path, unless the socket file and
// the process listening on it belong to a user the client trusts.
func (c *Client) checkPeer(conn net.Conn, path string) error {
	uids, err := c.daemonUIDs(path)
	if err != nil {
		return err
	}
	check := func(uid int, what string) error {
		for _, u := range uids {
			if uid == u {
				return nil
			}
		}
		return &ForeignSocketError{Path: path, UID: uid, What: what, Expected: uids}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := check(ownerOf(fi), "the socket file"); err != nil {
		return err
	}
	if uid, ok := peerUID(conn); ok {
		return check(uid, "the process listening on it")
	}
	return nil
}

// privateDirOwner returns the owner of dir if no other user than it and
// root may write to dir or any directory above it (after symbolic links).
func privateDirOwner(dir string) (int, bool) {
	dir, err := filepath.Abs(dir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return 0, false
	}
	owner := -1
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return 0, false
		}
		o := ownerOf(fi)
		if owner < 0 {
			owner = o
		}
		if o != owner && o != 0 || fi.Mode().Perm()&0o022 != 0 {
			return 0, false
		}
		if d == filepath.Dir(d) {
			return owner, true
		}
	}
}

func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
