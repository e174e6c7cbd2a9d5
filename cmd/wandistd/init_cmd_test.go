package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wandist/wandist/configs"
)

// freePortBase returns a port base whose six example ports (base+1..3,
// base+101..103) are free for TCP and UDP on loopback right now, and which
// is not the default (whose ports the README's example uses).
func freePortBase(t *testing.T) int {
	t.Helper()
	free := func(port int) bool {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		defer l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		u.Close()
		return true
	}
	for range 100 {
		base := 20000 + 100*rand.IntN(400) // 20000..59900
		ok := true
		for _, n := range exampleNodes(base) {
			ok = ok && free(n.quic) && free(n.tcp) && free(n.admin)
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port base")
	return 0
}

// The README walkthrough on a machine where the example's ports are taken:
// init with another port base writes configs that start two daemons whose
// link comes up on the ports it chose; a message from east reaches a
// subscriber on west, and so do those sent while west was killed (kill -9)
// and restarted.
func TestInitExampleRunsOnAnotherPortBase(t *testing.T) {
	dir := t.TempDir()
	base := freePortBase(t)
	out, _ := run(t, nil, "init", "--dir", dir, "--port-base", strconv.Itoa(base))
	if !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d", base+1)) {
		t.Fatalf("init did not print east's QUIC port %d:\n%s", base+1, out)
	}
	for _, f := range []string{"east-1.yaml", "west-1.yaml", "east-1.key", "west-1.key", "east-1.pub", "west-1.pub"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("init did not write %s: %v", f, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "east-1.key")); fi.Mode().Perm() != 0o600 {
		t.Errorf("east-1.key has mode %v, want 0600", fi.Mode().Perm())
	}
	nodes := exampleNodes(base)
	east := cluster{name: "east", node: "east-1", admin: nodes[0].admin, socket: filepath.Join(dir, "run", "east-1.sock"), cfg: filepath.Join(dir, "east-1.yaml")}
	west := cluster{name: "west", node: "west-1", admin: nodes[1].admin, socket: filepath.Join(dir, "run", "west-1.sock"), cfg: filepath.Join(dir, "west-1.yaml")}
	run(t, nil, "config", "check", "-c", east.cfg)
	run(t, nil, "config", "check", "-c", west.cfg)

	w := startProc(t, "run", "-c", west.cfg)
	w.waitLog(t, "msg=started", 10*time.Second)
	e := startProc(t, "run", "-c", east.cfg)
	e.waitLog(t, `msg="link up"`, 10*time.Second)
	st := status(t, east)
	if len(st.Links) != 1 || st.Links[0].State != "up" || st.Links[0].Cluster != "west" || st.Links[0].Transport != "quic" {
		t.Fatalf("east's status on admin port %d: %+v", east.admin, st.Links)
	}

	// A subscriber on west for 6 messages: 3 before the kill, 3 sent
	// while west is down.
	sub := exec.Command(binary, "sub", "--socket", west.socket, "--group", "greetings", "--count", "6")
	var subOut, subErr lockedBuffer
	sub.Stdout, sub.Stderr = &subOut, &subErr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	subDone := make(chan error, 1)
	go func() { subDone <- sub.Wait() }()
	t.Cleanup(func() { _ = sub.Process.Kill() })
	waitFor(t, 15*time.Second, func() bool { return status(t, east).Groups > 0 })
	run(t, strings.NewReader("hello\nfrom\neast\n"), "pub", "--socket", east.socket, "--group", "greetings")
	waitFor(t, 15*time.Second, func() bool { return strings.Count(subOut.String(), "\n") >= 3 })

	w.kill9()
	e.waitLog(t, `msg="link down"`, 10*time.Second)
	run(t, strings.NewReader("sent\nwhile\ndown\n"), "pub", "--socket", east.socket, "--group", "greetings")
	w2 := startProc(t, "run", "-c", west.cfg)
	w2.waitLog(t, `msg="link up"`, 15*time.Second)
	select {
	case err := <-subDone:
		if err != nil {
			t.Fatalf("sub: %v: %s", err, subErr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("sub got %q: the messages sent while west was down did not arrive after its restart\nsub: %s\neast:\n%s", subOut.String(), subErr.String(), e.log())
	}
	if got, want := subOut.String(), "hello\nfrom\neast\nsent\nwhile\ndown\n"; got != want {
		t.Fatalf("sub printed %q, want %q", got, want)
	}
}

// init refuses to overwrite without -f, names the file, and checks its
// port base.
func TestInitRefusesOverwriteAndBadPortBase(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCLI("init", "--dir", dir, "--port-base", "30000"); code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "east-1.key"))
	code, _, errOut := runCLI("init", "--dir", dir)
	if code != 1 || !strings.Contains(errOut, filepath.Join(dir, "east-1.yaml")) || !strings.Contains(errOut, "-f") {
		t.Fatalf("second init: code %d, stderr %q; want 1 naming east-1.yaml and -f", code, errOut)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "east-1.key")); !bytes.Equal(key, again) {
		t.Fatal("a refused init replaced east-1.key")
	}
	if code, _, errOut := runCLI("init", "--dir", dir, "--port-base", "30100", "-f"); code != 0 {
		t.Fatalf("init -f: %d %s", code, errOut)
	}
	if cfg, _ := os.ReadFile(filepath.Join(dir, "west-1.yaml")); !strings.Contains(string(cfg), "127.0.0.1:30201") {
		t.Fatalf("init -f --port-base 30100 did not rewrite west-1.yaml:\n%s", cfg)
	}
	for _, bad := range []string{"80", "65500", "x"} {
		if code, _, errOut := runCLI("init", "--dir", dir, "--port-base", bad, "-f"); code != 2 || !strings.Contains(errOut, "port-base") {
			t.Errorf("--port-base %s: code %d, stderr %q; want a usage error naming --port-base", bad, code, errOut)
		}
	}
}

// init's errors for a file that exists work with errors.Is.
func TestInitExistsIsErrExist(t *testing.T) {
	dir := t.TempDir()
	nodes := exampleNodes(31000)
	if err := writeExample(dir, nodes, 31000, false); err != nil {
		t.Fatal(err)
	}
	if err := writeExample(dir, nodes, 31000, false); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second writeExample: %v, want os.ErrExist", err)
	}
}

// lockedBuffer is a bytes.Buffer that a process writes while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// init with the default port base writes the nodes of
// configs/examples/two-cluster: the same listeners, admin addresses,
// sockets and peers, so the README's walkthrough and that example agree.
func TestInitDefaultMatchesTwoClusterExample(t *testing.T) {
	gen := t.TempDir()
	if code, _, errOut := runCLI("init", "--dir", gen); code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	ex := t.TempDir() // the committed configs, beside the generated keys
	for _, n := range []string{"east-1", "west-1"} {
		for _, f := range []string{n + ".key", n + ".pub"} {
			b, err := os.ReadFile(filepath.Join(gen, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(ex, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(filepath.Join("..", "..", "configs", "examples", "two-cluster", n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ex, n+".yaml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"east-1", "west-1"} {
		g, err := configs.Load(filepath.Join(gen, n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := configs.Load(filepath.Join(ex, n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if g.Listen != e.Listen || g.Admin != e.Admin {
			t.Errorf("%s: init writes listen %+v admin %+v; the example has %+v %+v", n, g.Listen, g.Admin, e.Listen, e.Admin)
		}
		if rel := func(c *configs.Config, dir string) string { r, _ := filepath.Rel(dir, c.Local.Socket); return r }; rel(g, gen) != rel(e, ex) {
			t.Errorf("%s: init's socket %s, the example's %s", n, g.Local.Socket, e.Local.Socket)
		}
		if len(g.Peers) != 1 || len(e.Peers) != 1 {
			t.Fatalf("%s: peers %d and %d, want 1 each", n, len(g.Peers), len(e.Peers))
		}
		gp, ep := g.Peers[0], e.Peers[0]
		if gp.Cluster != ep.Cluster || gp.Node != ep.Node || gp.Address != ep.Address || gp.Transport != ep.Transport || gp.Mode != ep.Mode {
			t.Errorf("%s: init's peer %+v, the example's %+v", n, gp, ep)
		}
	}
}
