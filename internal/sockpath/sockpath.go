// Package sockpath says where the local socket of wandistd is when the
// config (local.socket) or the client (Options.Socket, WANDIST_SOCKET) does
// not say: one place for the daemon and the SDK.
package sockpath

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Name is the default socket's file name.
const Name = "wandist.sock"

// SystemDir is the default socket's directory.
const SystemDir = "/run/wandist"

// System is the default socket of a system-wide daemon.
const System = SystemDir + "/" + Name

// Daemon returns the daemon's default socket path:
//   - in $RUNTIME_DIRECTORY (its first entry), which systemd sets for a unit
//     with RuntimeDirectory=;
//   - else in /run/wandist, if this user may create or write it (root, or a
//     user given that directory);
//   - else in $XDG_RUNTIME_DIR/wandist, a user's own runtime directory;
//   - else in /run/wandist still (the daemon then says it cannot create it).
func Daemon() string {
	if d, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); d != "" {
		return filepath.Join(d, Name)
	}
	if mayUse(SystemDir) {
		return System
	}
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		return filepath.Join(x, "wandist", Name)
	}
	return System
}

// Client returns the socket the SDK uses by default: /run/wandist/wandist.sock
// if it exists, else $XDG_RUNTIME_DIR/wandist/wandist.sock (a user's own
// daemon) if that exists, else /run/wandist/wandist.sock. It does not look
// at $RUNTIME_DIRECTORY: for a client, that is the client's own.
func Client() string {
	if exists(System) {
		return System
	}
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		if p := filepath.Join(x, "wandist", Name); exists(p) {
			return p
		}
	}
	return System
}

// mayUse reports whether this user may create dir, or write to it if it
// exists.
func mayUse(dir string) bool {
	if os.Geteuid() == 0 {
		return true
	}
	if _, err := os.Stat(dir); err == nil {
		return unix.Access(dir, unix.W_OK|unix.X_OK) == nil
	}
	return unix.Access(filepath.Dir(dir), unix.W_OK|unix.X_OK) == nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
