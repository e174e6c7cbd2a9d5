package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGHUP after adding a peer to the config file: the new link comes up,
// the existing one is not touched. A broken config on SIGHUP is refused.
func TestSighupAddsPeer(t *testing.T) {
	dir := t.TempDir()
	east, west := writeConfigs(t, dir, "quic")
	w := startProc(t, "run", "-c", west.cfg)
	w.waitLog(t, "msg=started", 10*time.Second)
	e := startProc(t, "run", "-c", east.cfg)
	e.waitLog(t, `msg="link up"`, 10*time.Second)

	// A third node, south, that accepts east.
	out, _ := run(t, nil, "keygen", "-o", filepath.Join(dir, "south-1.key"))
	southPub := strings.TrimSpace(out)
	southPort := freePort(t)
	southCfg := filepath.Join(dir, "south-1.yaml")
	os.WriteFile(southCfg, []byte(fmt.Sprintf(`cluster: south
node: south-1
identity: south-1.key
listen: { quic: 127.0.0.1:%d }
local: { socket: %s }
peers:
  - { cluster: east, node: east-1, mode: accept, public_key: "%s" }
`, southPort, filepath.Join(dir, "south.sock"), east.pub)), 0o644)
	s := startProc(t, "run", "-c", southCfg)
	s.waitLog(t, "msg=started", 10*time.Second)

	// A broken edit first: refused, the old config stays.
	good, _ := os.ReadFile(east.cfg)
	os.WriteFile(east.cfg, append(append([]byte(nil), good...), "bogus_key: 1\n"...), 0o644)
	e.cmd.Process.Signal(syscall.SIGHUP)
	e.waitLog(t, "reload refused", 10*time.Second)

	os.WriteFile(east.cfg, append(good, fmt.Sprintf("  - { cluster: south, node: south-1, address: \"127.0.0.1:%d\", transport: quic, mode: connect, public_key: \"%s\" }\n", southPort, southPub)...), 0o644)
	e.cmd.Process.Signal(syscall.SIGHUP)
	e.waitLog(t, "peer=south/south-1 transport=quic", 10*time.Second)
	n := 0
	for _, l := range strings.Split(e.log(), "\n") {
		if strings.Contains(l, `msg="link up"`) && strings.Contains(l, "peer=west/west-1") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the west link came up %d times: the reload disturbed it\n%s", n, e.log())
	}
	// And through the CLI. Without admin.token the admin listener does not
	// reload: the CLI says how to, and with -c FILE sends SIGHUP to the
	// daemon it finds through the config's socket.
	code, _, errOut := runCLI("reload", "--admin", fmt.Sprintf("127.0.0.1:%d", east.admin))
	if code != 1 || !strings.Contains(errOut, "set admin.token") || !strings.Contains(errOut, "wandistd reload -c FILE") {
		t.Fatalf("reload over HTTP without a token: exit %d, %q", code, errOut)
	}
	reloads := func() int { return strings.Count(e.log(), `msg="config reloaded"`) }
	before := reloads()
	out, _ = run(t, nil, "reload", "-c", east.cfg)
	if want := fmt.Sprintf("sent SIGHUP to wandistd east/east-1 (pid %d)", e.cmd.Process.Pid); !strings.Contains(out, want) {
		t.Fatalf("wandistd reload -c printed %q, want %q", out, want)
	}
	waitFor(t, 10*time.Second, func() bool { return reloads() == before+1 })
}

// With admin.token, `wandistd reload` reloads over HTTP with the token from
// --token or the config file, and says what is missing without it.
func TestReloadWithAdminToken(t *testing.T) {
	dir := t.TempDir()
	_, west := writeConfigs(t, dir, "quic")
	const token = "Hq4mZ8rV2xK7wN3p"
	text, _ := os.ReadFile(west.cfg)
	withToken := strings.Replace(string(text), fmt.Sprintf("admin: { listen: 127.0.0.1:%d }", west.admin),
		fmt.Sprintf("admin: { listen: 127.0.0.1:%d, token: %s }", west.admin, token), 1)
	os.WriteFile(west.cfg, []byte(withToken), 0o644)
	os.Chmod(west.cfg, 0o644)
	// Readable by others: refused, by config check and at start.
	code, _, errOut := runCLI("config", "check", "-c", west.cfg)
	if code != 1 || !strings.Contains(errOut, "holds admin.token, but has mode 0644") || !strings.Contains(errOut, "chmod 600 "+west.cfg) || strings.Contains(errOut, token) {
		t.Fatalf("config check of a 0644 config with a token: exit %d, %q", code, errOut)
	}
	os.Chmod(west.cfg, 0o600)
	w := startProc(t, "run", "-c", west.cfg)
	w.waitLog(t, "msg=started", 10*time.Second)
	admin := fmt.Sprintf("127.0.0.1:%d", west.admin)
	t.Setenv("WANDIST_ADMIN_TOKEN", "")
	code, _, errOut = runCLI("reload", "--admin", admin)
	if code != 1 || !strings.Contains(errOut, "give the daemon's admin.token") {
		t.Fatalf("reload without the token: exit %d, %q", code, errOut)
	}
	for _, args := range [][]string{{"--admin", admin, "--token", token}, {"-c", west.cfg}} {
		if code, out, errOut := runCLI(append([]string{"reload"}, args...)...); code != 0 || out != "reloaded\n" {
			t.Errorf("reload %v: exit %d, %q %q", args, code, out, errOut)
		}
	}
}
