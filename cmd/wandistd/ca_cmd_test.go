package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
)

func TestCAInitRefusesOverwriteAndUsage(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runCLI("ca", "init", "-cluster", "east", "-dir", dir); code != 0 {
		t.Fatalf("ca init: %d %s", code, stderr)
	}
	for name, mode := range map[string]os.FileMode{"ca.key": 0o600, "gossip.key": 0o600, "ca.crt": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v, want mode %v", name, fi, err, mode)
		}
	}
	g, _ := os.ReadFile(filepath.Join(dir, "gossip.key"))
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(g))); err != nil || len(raw) != 32 {
		t.Fatalf("gossip.key holds %d bytes (%v), want 32 in base64", len(raw), err)
	}
	crt, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if code, _, stderr := runCLI("ca", "init", "-cluster", "east", "-dir", dir); code != 1 || !strings.Contains(stderr, "refusing to overwrite") {
		t.Fatalf("second ca init: %d %s", code, stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "ca.crt")); string(again) != string(crt) {
		t.Fatal("ca.crt was replaced")
	}
	for _, args := range [][]string{
		{"ca"}, {"ca", "sign"}, {"ca", "init"}, {"ca", "init", "-cluster", "e", "-validity", "0s"},
		{"ca", "issue", "-node", "n"}, {"ca", "issue", "-ca", dir}, {"ca", "issue", "-ca", dir, "-node", "n"},
		{"ca", "issue", "-ca", dir, "-node", "n", "-key", "k", "-public-key", "p"},
	} {
		if code, _, stderr := runCLI(args...); code != 2 || !strings.Contains(stderr, "--help'") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, code, stderr)
		}
	}
	if code, _, stderr := runCLI("ca", "issue", "-ca", dir, "-node", "n", "-public-key", "ed25519:AAAA"); code != 1 || !strings.Contains(stderr, "invalid public key") {
		t.Errorf("bad public key: %d %s", code, stderr)
	}
}

// TestCACommandsLinkTwoDaemons makes a CA per cluster and a certificate per
// node with the commands, and links two daemons that pin no keys.
func TestCACommandsLinkTwoDaemons(t *testing.T) {
	dir, err := os.MkdirTemp("", "wca")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, cl := range []string{"east", "west"} {
		mustCLI(t, "ca", "init", "-cluster", cl, "-dir", filepath.Join(dir, cl+"-ca"))
		mustCLI(t, "keygen", "-o", filepath.Join(dir, cl+".key"))
		if cl == "east" {
			mustCLI(t, "ca", "issue", "-ca", filepath.Join(dir, "east-ca"), "-node", "east-1",
				"-key", filepath.Join(dir, "east.key"), "-out", filepath.Join(dir, "east.crt"))
		} else {
			pub := strings.TrimSpace(mustCLI(t, "keygen", "-o", filepath.Join(dir, "west.key"), "-f"))
			mustCLI(t, "ca", "issue", "-ca", filepath.Join(dir, "west-ca"), "-node", "west-1",
				"-public-key", pub, "-out", filepath.Join(dir, "west.crt"), "-validity", "24h")
		}
	}
	east := startFromFile(t, dir, "east", "west", "")
	addr := east.ListenAddr("tcp")
	west := startFromFile(t, dir, "west", "east", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := west.WaitLink(ctx, "east", "east-1", true); err != nil {
		t.Fatal(err)
	}
	if err := east.WaitLink(ctx, "west", "west-1", true); err != nil {
		t.Fatal(err)
	}
	if c := west.Status().Certificate; c == nil || time.Until(c.NotAfter) > 25*time.Hour {
		t.Fatalf("west's certificate %+v, want one valid for 24h", c)
	}
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runCLI(args...)
	if code != 0 {
		t.Fatalf("wandistd %v: exit %d: %s", args, code, stderr)
	}
	return stdout
}

// startFromFile writes and loads the config of node <self>-1, trusting its
// own CA and other's, and starts it; it dials addr unless "".
func startFromFile(t *testing.T, dir, self, other, addr string) *daemon.Daemon {
	t.Helper()
	peer := fmt.Sprintf("  - {cluster: %s, node: %s-1, transport: tcp, mode: accept}\n", other, other)
	if addr != "" {
		peer = fmt.Sprintf("  - {cluster: %s, node: %s-1, transport: tcp, address: %q}\n", other, other, addr)
	}
	text := fmt.Sprintf(`cluster: %[1]s
node: %[1]s-1
identity: %[1]s.key
certificate: %[1]s.crt
listen: {tcp: "127.0.0.1:0"}
local: {socket: %[1]s.sock}
link: {reconnect_max: 200ms}
trust:
  ca_files: [%[1]s-ca/ca.crt]
remotes:
  - cluster: %[2]s
    seeds: ["127.0.0.1:1"]
    transport: tcp
    ca_files: [%[2]s-ca/ca.crt]
peers:
%[3]s`, self, other, peer)
	path := filepath.Join(dir, self+".yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
