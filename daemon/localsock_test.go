package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startErr starts n's daemon and returns why it would not start (nil: it
// did, and is closed at the end of the test).
func startErr(n *node) error {
	d, err := New(n.cfg, n.opts)
	if err != nil {
		return err
	}
	if err := d.Start(context.Background()); err != nil {
		d.Close()
		return err
	}
	n.d = d
	n.t.Cleanup(func() { d.Close() })
	return nil
}

// leftSocket leaves a socket file at path that nobody listens on.
func leftSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make files of another user")
	}
}

const otherUID = 54321 // a user that is not this test's

// Another user's socket at the path: the daemon refuses to start, says
// whose it is, and leaves it.
func TestLocalSocketOfAnotherUserRefused(t *testing.T) {
	needRoot(t)
	n := newNode(t, "mem", "east", "east-1")
	leftSocket(t, n.cfg.Local.Socket)
	if err := os.Lchown(n.cfg.Local.Socket, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	err := startErr(n)
	if !errors.Is(err, ErrSocketPlace) || !strings.Contains(err.Error(), "uid 54321") || !strings.Contains(err.Error(), "left alone") {
		t.Fatalf("start beside another user's socket: %v, want ErrSocketPlace naming uid 54321", err)
	}
	if fi, err := os.Lstat(n.cfg.Local.Socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the other user's socket was touched: %v", err)
	}
}

// A file that is not a socket at the path: refused, kept.
func TestLocalSocketPathNotASocketRefused(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	if err := os.WriteFile(n.cfg.Local.Socket, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := startErr(n)
	if !errors.Is(err, ErrSocketPlace) || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("start beside a regular file: %v", err)
	}
	if b, err := os.ReadFile(n.cfg.Local.Socket); err != nil || string(b) != "data" {
		t.Fatalf("the file was touched: %q %v", b, err)
	}
}

// This user's stale socket (a daemon that died): removed and reused.
func TestLocalStaleSocketReused(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	leftSocket(t, n.cfg.Local.Socket)
	if err := startErr(n); err != nil {
		t.Fatalf("start beside our stale socket: %v", err)
	}
	connect(t, n)
}

// The socket's directory: created 0750 when missing; refused when another
// user owns it or group or others may write it.
func TestLocalSocketDirectoryChecked(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	dir := filepath.Join(t.TempDir(), "run", "wandist")
	n.cfg.Local.Socket = filepath.Join(dir, "w.sock")
	if err := startErr(n); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm()&0o027 != 0 {
		t.Fatalf("created socket directory: %v %v, want at most 0750", fi.Mode(), err)
	}
	n.d.Close()

	open := newNode(t, "mem", "east", "east-1")
	open.cfg.Local.Socket = filepath.Join(t.TempDir(), "w.sock")
	os.Chmod(filepath.Dir(open.cfg.Local.Socket), 0o777)
	if err := startErr(open); !errors.Is(err, ErrSocketPlace) || !strings.Contains(err.Error(), "writable by group or others (mode 0777)") {
		t.Fatalf("world-writable socket directory: %v", err)
	}
	if os.Geteuid() == 0 {
		other := newNode(t, "mem", "east", "east-1")
		other.cfg.Local.Socket = filepath.Join(t.TempDir(), "w.sock")
		os.Chown(filepath.Dir(other.cfg.Local.Socket), otherUID, otherUID)
		if err := startErr(other); !errors.Is(err, ErrSocketPlace) || !strings.Contains(err.Error(), "belongs to uid 54321") {
			t.Fatalf("socket directory of another user: %v", err)
		}
	}
}
