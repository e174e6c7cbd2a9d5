package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wandist/wandist/auth"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = runMain(context.Background(), args, &o, &e, strings.NewReader(""))
	return code, o.String(), e.String()
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "n.key")
	code, out, errOut := runCLI("keygen", "-o", key)
	if code != 0 {
		t.Fatalf("keygen: %d %s", code, errOut)
	}
	pub, err := auth.ParsePublicKey(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("keygen printed %q: %v", out, err)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("keygen must print exactly one line, got %q", out)
	}
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	priv, err := auth.LoadKeyFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Fatal("printed public key does not match the key file")
	}
	// No overwrite without -f; the file stays as it was.
	code, _, errOut = runCLI("keygen", "-o", key)
	if code == 0 || !strings.Contains(errOut, "-f") {
		t.Fatalf("overwrite without -f: code %d, %q", code, errOut)
	}
	again, _ := auth.LoadKeyFile(key)
	if !again.Equal(priv) {
		t.Fatal("refused overwrite changed the key")
	}
	if code, _, errOut = runCLI("keygen", "-o", key, "-f"); code != 0 {
		t.Fatalf("keygen -f: %s", errOut)
	}
	if code, _, _ = runCLI("keygen"); code != 2 {
		t.Fatalf("keygen without -o: exit %d, want 2", code)
	}
}

func TestConfigCheckNamesLine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte("cluster: east\nnode: east-1\nidentity: k.key\nlink:\n  keepalive_timout: 3s\n"), 0o644)
	code, _, errOut := runCLI("config", "check", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, ":5:") || !strings.Contains(errOut, "keepalive_timout") {
		t.Fatalf("config check: exit %d, %q; want the key and line 5 named", code, errOut)
	}
	// A group/world-readable key is refused with a clear message.
	key := filepath.Join(dir, "k.key")
	if code, _, errOut := runCLI("keygen", "-o", key); code != 0 {
		t.Fatal(errOut)
	}
	os.Chmod(key, 0o644)
	os.WriteFile(cfg, []byte("cluster: east\nnode: east-1\nidentity: k.key\n"), 0o644)
	code, _, errOut = runCLI("config", "check", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("readable key: exit %d, %q", code, errOut)
	}
	os.Chmod(key, 0o600)
	if code, out, errOut := runCLI("config", "check", "-c", cfg); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("good config: %d %q %q", code, out, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"pub"}, {"sub", "--count", "-1", "--group", "g"}, {"pub", "--group", "g", "--priority", "urgent"}, {"run"}} {
		if code, _, errOut := runCLI(args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
	if code, _, errOut := runCLI("pub", "--socket", filepath.Join(t.TempDir(), "none.sock"), "--group", "g", "x"); code != 1 || !strings.Contains(errOut, "unavailable") {
		t.Errorf("pub to a missing socket: exit %d, %q", code, errOut)
	}
}
