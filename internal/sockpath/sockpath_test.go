package sockpath

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDaemon(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "/run/svc:/run/other")
	if got := Daemon(); got != "/run/svc/wandist.sock" {
		t.Errorf("with RUNTIME_DIRECTORY: %q, want /run/svc/wandist.sock", got)
	}
	t.Setenv("RUNTIME_DIRECTORY", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	want := System
	if !mayUse(SystemDir) {
		want = "/run/user/1000/wandist/wandist.sock"
	}
	if got := Daemon(); got != want {
		t.Errorf("without RUNTIME_DIRECTORY (uid %d): %q, want %q", os.Geteuid(), got, want)
	}
}

func TestClient(t *testing.T) {
	if exists(System) {
		t.Skip(System + " exists here")
	}
	x := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", x)
	t.Setenv("RUNTIME_DIRECTORY", t.TempDir()) // the client's own: ignored
	if got := Client(); got != System {
		t.Errorf("no socket anywhere: %q, want %q", got, System)
	}
	p := filepath.Join(x, "wandist", Name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Client(); got != p {
		t.Errorf("a user's daemon socket: %q, want %q", got, p)
	}
}
