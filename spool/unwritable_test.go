package spool

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// unprivilegedEnv marks the run of TestUnwritableDir that
// unwritableAsNobody starts as user nobody.
const unprivilegedEnv = "WANDIST_SPOOL_TEST_UNPRIVILEGED"

// Open of a directory this user may not write fails naming the path, with
// ErrPermission. Root ignores directory permissions: as root, the test runs
// its own binary again as user nobody, so that it runs for real in CI.
func TestUnwritableDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if f, err := os.Create(filepath.Join(dir, "probe")); err == nil {
		f.Close()
		switch {
		case os.Getenv(unprivilegedEnv) != "":
			t.Fatal("running as an unprivileged user, yet a read-only directory took a file")
		case os.Geteuid() == 0:
			unwritableAsNobody(t)
			return
		default:
			t.Skip("running with privileges that ignore directory permissions, and not as root (which can run this as nobody)")
		}
	}
	s, _, err := Open(testOptions(dir))
	if err == nil {
		s.Close()
		t.Fatal("Open of a read-only directory succeeded")
	}
	if !strings.Contains(err.Error(), dir) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("error %v: want the path and ErrPermission", err)
	}
}

// unwritableAsNobody runs TestUnwritableDir in a copy of this test binary
// as user nobody (the binary's own folder is root's alone) and fails unless
// it passed there.
func unwritableAsNobody(t *testing.T) {
	uid, gid := uint32(65534), uint32(65534)
	if u, err := user.Lookup("nobody"); err == nil {
		if n, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			uid = uint32(n)
		}
		if n, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
			gid = uint32(n)
		}
	}
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil { // t.TempDir's parent is 0700
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "spool.test")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestUnwritableDir$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1", "TMPDIR="+os.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestUnwritableDir") {
		t.Fatalf("TestUnwritableDir as nobody (uid %d): %v\n%s", uid, err, out)
	}
	t.Logf("ran as nobody (uid %d): passed", uid)
}
