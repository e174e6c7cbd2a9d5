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

// public_key_file pointing at the peer's private key: config check and the
// start-up error say so and show none of it.
func TestPrivateKeyAsPublicKeyNeverShown(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCLI("keygen", "-o", filepath.Join(dir, "east-1.key")); code != 0 {
		t.Fatal(errOut)
	}
	peerKey := filepath.Join(dir, "west-1.key")
	if code, _, errOut := runCLI("keygen", "-o", peerKey); code != 0 {
		t.Fatal(errOut)
	}
	pemText, _ := os.ReadFile(peerKey)
	var body string
	for _, l := range strings.Split(string(pemText), "\n") {
		if !strings.HasPrefix(l, "-----") {
			body += l
		}
	}
	cfg := filepath.Join(dir, "east-1.yaml")
	os.WriteFile(cfg, []byte("cluster: east\nnode: east-1\nidentity: east-1.key\nlisten: {quic: 127.0.0.1:0}\n"+
		"peers:\n  - {cluster: west, node: west-1, public_key_file: west-1.key}\n"), 0o644)
	for _, args := range [][]string{{"config", "check", "-c", cfg}, {"run", "-c", cfg}} {
		code, out, errOut := runCLI(args...)
		if code != 1 || !strings.Contains(errOut, "west-1.key holds a private key; public_key_file must hold the peer's public key") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
		for i := 0; i+8 <= len(body); i++ {
			if w := body[i : i+8]; strings.Contains(out+errOut, w) {
				t.Fatalf("%v shows part of the private key (%q):\n%s%s", args, w, out, errOut)
			}
		}
	}
}

// A spool secret file group or others may read fails config check.
func TestConfigCheckSpoolSecretMode(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCLI("keygen", "-o", filepath.Join(dir, "k.key")); code != 0 {
		t.Fatal(errOut)
	}
	secret := filepath.Join(dir, "spool.secret")
	os.WriteFile(secret, []byte("Tz6pWq1Rk8Ln3Vb5Xc9M"), 0o644)
	os.Chmod(secret, 0o644)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("cluster: east\nnode: east-1\nidentity: k.key\nspool: {dir: spool, secret_file: spool.secret}\n"), 0o644)
	code, _, errOut := runCLI("config", "check", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "spool.secret_file") || !strings.Contains(errOut, "chmod 600 "+secret) || strings.Contains(errOut, "Tz6pWq1R") {
		t.Fatalf("0644 secret file: exit %d, %q", code, errOut)
	}
	os.Chmod(secret, 0o600)
	if code, _, errOut := runCLI("config", "check", "-c", cfg); code != 0 {
		t.Fatalf("0600 secret file: exit %d, %q", code, errOut)
	}
}
