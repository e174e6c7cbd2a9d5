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
	// And through the CLI, a reload with nothing changed is accepted.
	if out, _ := run(t, nil, "reload", "--admin", fmt.Sprintf("127.0.0.1:%d", east.admin)); !strings.Contains(out, "reloaded") {
		t.Fatalf("wandistd reload printed %q", out)
	}
}
