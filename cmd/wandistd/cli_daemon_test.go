package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
	"github.com/wandist/wandist/groups"
)

// lineBuf is a stdout or stderr of a CLI run in the background.
type lineBuf struct {
	mu   sync.Mutex
	b    bytes.Buffer
	wake chan struct{} // capacity 1: something was written
}

func newLineBuf() *lineBuf { return &lineBuf{wake: make(chan struct{}, 1)} }

func (l *lineBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.b.Write(p)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return n, err
}

func (l *lineBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until cond holds for what was written.
func (l *lineBuf) waitFor(t *testing.T, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if s := l.String(); cond(s) {
			return s
		}
		select {
		case <-l.wake:
		case <-deadline:
			t.Fatalf("no %s within 30s; got %q", what, l.String())
		}
	}
}

// bgCLI is the CLI running in the background, in this process.
type bgCLI struct {
	out, err *lineBuf
	cancel   context.CancelFunc
	code     chan int
}

func startCLI(t *testing.T, args ...string) *bgCLI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &bgCLI{out: newLineBuf(), err: newLineBuf(), cancel: cancel, code: make(chan int, 1)}
	go func() { b.code <- runMain(ctx, args, b.out, b.err, strings.NewReader("")) }()
	t.Cleanup(func() { cancel(); <-b.code; b.code <- 0 })
	return b
}

// wait waits for the CLI to exit and returns its exit code.
func (b *bgCLI) wait(t *testing.T) int {
	t.Helper()
	select {
	case c := <-b.code:
		b.code <- c
		return c
	case <-time.After(30 * time.Second):
		t.Fatalf("CLI still running after 30s; stdout %q, stderr %q", b.out.String(), b.err.String())
		return 0
	}
}

// startLinked starts east and west in this process, from config files
// (east dials west over TCP), and waits for their link.
func startLinked(t *testing.T) (east, west cluster) {
	t.Helper()
	dir, err := os.MkdirTemp("", "wcli") // short: socket paths are bounded
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	east, west = writeConfigs(t, dir, "tcp")
	var ds []*daemon.Daemon
	for _, c := range []cluster{west, east} {
		cfg, err := configs.Load(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		ds = append(ds, d)
	}
	waitFor(t, 30*time.Second, func() bool {
		for _, d := range ds {
			if st := d.Status(); len(st.Links) != 1 || st.Links[0].State != daemon.StateUp {
				return false
			}
		}
		return true
	})
	return east, west
}

// members lists group's members as c's daemon knows them, by the CLI.
func members(t *testing.T, c cluster, group string) []memberJSON {
	t.Helper()
	code, out, errOut := runCLI("groups", "-c", c.cfg, "--group", group, "--json")
	if code != 0 {
		t.Fatalf("groups -c --json: exit %d, %s", code, errOut)
	}
	var ms []memberJSON
	if err := json.Unmarshal([]byte(out), &ms); err != nil {
		t.Fatalf("groups --json printed %q: %v", out, err)
	}
	return ms
}

func waitMembers(t *testing.T, c cluster, group string, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, func() bool {
		k := 0
		for _, m := range members(t, c, group) {
			if m.Reachable {
				k++
			}
		}
		return k == n
	})
}

func TestCLIAgainstDaemons(t *testing.T) {
	east, west := startLinked(t)
	for _, k := range []string{envSocket, envToken, envAdmin, envAdminToken} {
		t.Setenv(k, "")
	}
	t.Run("status -c, env and flag", func(t *testing.T) { testStatusSources(t, east, west) })
	t.Run("status --watch", func(t *testing.T) { testStatusWatch(t, east) })
	t.Run("status --watch --json into a real pipe", func(t *testing.T) { testStatusWatchPipe(t, east) })
	t.Run("sub shows the sender", func(t *testing.T) { testSubSender(t, east, west) })
	t.Run("pub --strategy broadcast", func(t *testing.T) { testPubBroadcast(t, east, west) })
	t.Run("pub --key to sub --partitions", func(t *testing.T) { testPubKey(t, east, west) })
	t.Run("req with flags after the payload", func(t *testing.T) { testReq(t, east, west) })
	t.Run("bench", func(t *testing.T) { testBench(t, east, west) })
}

// status finds the admin listener by -c, then $WANDIST_ADMIN over -c, then
// --admin over both; --json prints one object that parses.
func testStatusSources(t *testing.T, east, west cluster) {
	node := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(append([]string{"status", "--json"}, args...)...)
		var st daemon.Status
		if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
			t.Fatalf("status %v: exit %d, %q %q (%v)", args, code, out, errOut, err)
		}
		return st.Node
	}
	if n := node("-c", east.cfg); n != "east-1" {
		t.Errorf("status -c east: node %s", n)
	}
	t.Setenv(envAdmin, fmt.Sprintf("127.0.0.1:%d", west.admin))
	if n := node("-c", east.cfg); n != "west-1" {
		t.Errorf("$WANDIST_ADMIN (west) with -c east: node %s, want west-1", n)
	}
	if n := node("-c", east.cfg, "--admin", fmt.Sprintf("127.0.0.1:%d", east.admin)); n != "east-1" {
		t.Errorf("--admin east with $WANDIST_ADMIN west: node %s, want east-1", n)
	}
	t.Setenv(envAdmin, "")
	// The text form names the node too.
	if code, out, _ := runCLI("status", "-c", east.cfg); code != 0 || !strings.Contains(out, "node east/east-1") {
		t.Errorf("status -c: exit %d, %q", code, out)
	}
}

// status --watch --json into a pipe is one Status object per line, and the
// text form into a pipe has plain snapshots: no escape codes either way.
func testStatusWatch(t *testing.T, east cluster) {
	b := startCLI(t, "status", "-c", east.cfg, "--watch", "--json")
	out := b.out.waitFor(t, "3 JSON lines", func(s string) bool { return strings.Count(s, "\n") >= 3 })
	b.cancel()
	if code := b.wait(t); code != 0 {
		t.Fatalf("status --watch --json: exit %d, %s", code, b.err.String())
	}
	for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n")[:3] {
		var st daemon.Status
		if err := json.Unmarshal([]byte(l), &st); err != nil || st.Node != "east-1" {
			t.Fatalf("line %d of status --watch --json is not a status object: %q (%v)", i+1, l, err)
		}
	}
	b = startCLI(t, "status", "-c", east.cfg, "--watch")
	out = b.out.waitFor(t, "2 snapshots", func(s string) bool { return strings.Count(s, "node east/east-1") >= 2 })
	b.cancel()
	b.wait(t)
	if strings.Contains(out+b.out.String(), "\x1b") {
		t.Fatalf("status --watch wrote escape codes into a pipe:\n%q", out)
	}
	if !strings.Contains(out, "\n\nnode east/east-1") {
		t.Errorf("status --watch snapshots are not separated by a blank line:\n%s", out)
	}
}

// sub --show-sender prints SENDER PAYLOAD; sub --json includes from and group.
func testSubSender(t *testing.T, east, west cluster) {
	text := startCLI(t, "sub", "-c", west.cfg, "--group", "who", "--count", "1", "--show-sender")
	js := startCLI(t, "sub", "--group", "who", "--count", "1", "--json", "--socket", west.socket)
	waitMembers(t, east, "who", 2)
	for _, p := range []string{"one", "two"} {
		if code, _, errOut := runCLI("pub", "-c", east.cfg, "--group", "who", "--strategy", "round-robin", p); code != 0 {
			t.Fatalf("pub: %s", errOut)
		}
	}
	text.wait(t)
	js.wait(t)
	if got := text.out.String(); !strings.HasPrefix(got, "east/east-1/") || !strings.HasSuffix(got, " one\n") && !strings.HasSuffix(got, " two\n") {
		t.Errorf("sub --show-sender printed %q, want east/east-1/N PAYLOAD", got)
	}
	var m subJSON
	line := js.out.String()
	if err := json.Unmarshal([]byte(line), &m); err != nil || !strings.HasPrefix(m.From, "east/east-1/") || m.Group != "who" || m.Payload == nil || strings.Count(line, "\n") != 1 {
		t.Errorf("sub --json printed %q (%v)", line, err)
	}
}

// pub --strategy broadcast reaches every member.
func testPubBroadcast(t *testing.T, east, west cluster) {
	a := startCLI(t, "sub", "-c", west.cfg, "--group", "bc", "--count", "1")
	b := startCLI(t, "sub", "-c", west.cfg, "--group", "bc", "--count", "1")
	waitMembers(t, east, "bc", 2)
	code, out, errOut := runCLI("pub", "-c", east.cfg, "--group", "bc", "all", "--strategy", "broadcast", "--json")
	if code != 0 || strings.TrimSpace(out) != `{"accepted":1}` {
		t.Fatalf("pub --json: exit %d, %q %q", code, out, errOut)
	}
	for _, s := range []*bgCLI{a, b} {
		if code := s.wait(t); code != 0 || s.out.String() != "all\n" {
			t.Errorf("a member got %q (exit %d, %s); a broadcast reaches every member", s.out.String(), code, s.err.String())
		}
	}
}

// pub --key goes to the owner of the key's partition, in a group joined by
// sub --partitions.
func testPubKey(t *testing.T, east, west cluster) {
	const per = 3
	var keys [2][]string
	for i := 0; len(keys[0]) < per || len(keys[1]) < per; i++ {
		k := fmt.Sprintf("k%d", i)
		if p := groups.Partition(k, 2); len(keys[p]) < per {
			keys[p] = append(keys[p], k)
		}
	}
	var subs [2]*bgCLI
	for p := range subs {
		// With --count, the first owner to finish exits while keys of the
		// other partition may be in flight: they still reach their owner.
		subs[p] = startCLI(t, "sub", "-c", west.cfg, "--group", "parts", "--partitions", "2", "--own", fmt.Sprint(p), "--count", fmt.Sprint(per))
		subs[p].err.waitFor(t, "subscribed", func(s string) bool { return s != "" })
	}
	waitMembers(t, east, "parts", 2)
	for p := range keys {
		for _, k := range keys[p] {
			// The flag after the payload, too.
			if code, _, errOut := runCLI("pub", "-c", east.cfg, "--group", "parts", fmt.Sprintf("p%d-%s", p, k), "--key", k); code != 0 {
				t.Fatalf("pub --key %s: %s", k, errOut)
			}
		}
	}
	defer func() {
		if t.Failed() {
			_, out, _ := runCLI("status", "-c", east.cfg)
			t.Logf("members on east: %+v\neast status:\n%s", members(t, east, "parts"), out)
		}
	}()
	for p, s := range subs {
		if code := s.wait(t); code != 0 {
			t.Fatalf("sub of partition %d: exit %d, %s", p, code, s.err.String())
		}
		got := strings.Fields(s.out.String())
		if len(got) != per {
			t.Fatalf("the owner of partition %d got %q", p, got)
		}
		for _, g := range got {
			if !strings.HasPrefix(g, fmt.Sprintf("p%d-", p)) {
				t.Errorf("the owner of partition %d got %q, a key of another partition", p, g)
			}
		}
	}
	// Each sub confirmed what it printed before it exited: nothing is left
	// to come again to a later owner.
	waitFor(t, 30*time.Second, func() bool {
		return statusOf(t, east).Links[0].QueuedMessages == 0 && statusOf(t, west).Hold.Messages == 0
	})
}

// statusOf is c's daemon status, by status --json.
func statusOf(t *testing.T, c cluster) daemon.Status {
	t.Helper()
	code, out, errOut := runCLI("status", "-c", c.cfg, "--json")
	var st daemon.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Links) == 0 {
		t.Fatalf("status -c %s --json: exit %d, %v, %s", c.cfg, code, err, errOut)
	}
	return st
}

// req takes flags after its payload, and prints its reply as JSON.
func testReq(t *testing.T, east, west cluster) {
	startCLI(t, "serve", "-c", west.cfg, "--group", "echo", "--echo")
	waitMembers(t, east, "echo", 1)
	code, out, errOut := runCLI("req", "-c", east.cfg, "--group", "echo", "hello", "--timeout", "10s")
	if code != 0 || out != "hello\n" {
		t.Fatalf("req ... hello --timeout 10s: exit %d, %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI("req", "--socket", east.socket, "--group", "echo", "hi", "--json")
	var r reqJSON
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Payload == nil || *r.Payload != "hi" || !strings.HasPrefix(r.From, "west/west-1/") || r.Seconds <= 0 {
		t.Fatalf("req --json: exit %d, %q %q (%v)", code, out, errOut, err)
	}
}

// bench measures between the two daemons and prints its figures.
func testBench(t *testing.T, east, west cluster) {
	code, out, errOut := runCLI("bench", "--from", east.socket, "--to", west.cfg, "--messages", "2000", "--requests", "100", "--json")
	if code != 0 {
		t.Fatalf("bench --json: exit %d, %s", code, errOut)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	if r.From != "east/east-1" || r.To != "west/west-1" || r.OneWay == nil || r.RequestReply == nil {
		t.Fatalf("bench --json: %s", out)
	}
	for name, f := range map[string]*benchFigures{"one-way": r.OneWay, "request-reply": r.RequestReply} {
		if f.MsgsPerSecond <= 0 || f.P50Seconds <= 0 || f.P99Seconds < f.P50Seconds || f.Seconds <= 0 {
			t.Errorf("%s figures: %+v", name, *f)
		}
	}
	if r.OneWay.Messages != 2000 || r.RequestReply.Messages != 100 {
		t.Errorf("bench counted %d messages and %d requests, want 2000 and 100", r.OneWay.Messages, r.RequestReply.Messages)
	}
	t.Logf("bench: %s", out)
	code, out, errOut = runCLI("bench", "--from", east.cfg, "--to", west.socket, "--messages", "500", "--requests", "20")
	if code != 0 || strings.Count(out, "msgs/s") != 2 || strings.Count(out, "p50") != 2 || strings.Count(out, "p99") != 2 {
		t.Fatalf("bench: exit %d, %q %q", code, out, errOut)
	}
	t.Logf("bench:\n%s", out)
	code, _, errOut = runCLI("bench", "--from", east.socket, "--to", "/nonexistent.sock")
	if code != 1 || !strings.Contains(errOut, "--to") {
		t.Errorf("bench to a missing socket: exit %d, %q", code, errOut)
	}
}

// The built binary's status --watch --json, read from a pipe line by line
// while it runs: each line arrives whole, as it is made.
func testStatusWatchPipe(t *testing.T, east cluster) {
	cmd := exec.Command(binary, "status", "-c", east.cfg, "--watch", "--json")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		r := bufio.NewReader(out)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		for range lines {
		}
		cmd.Wait()
	}()
	for i := range 2 {
		select {
		case l, ok := <-lines:
			var st daemon.Status
			if err := json.Unmarshal([]byte(l), &st); !ok || err != nil || st.Node != "east-1" || strings.Contains(l, "\x1b") {
				t.Fatalf("line %d from the pipe: %q (%v)", i+1, l, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no line %d from status --watch --json within 30s", i+1)
		}
	}
}
