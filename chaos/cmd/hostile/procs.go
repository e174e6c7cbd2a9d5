package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one wandistd process on loopback.
type proc struct {
	name, cluster string
	dir           string
	admin         int
	quic, tcp     int
	socket        string
	pub           string // its public key line
	bin           string
	cmd           *exec.Cmd
	exited        chan struct{}
}

var httpc = &http.Client{Timeout: 3 * time.Second}

func newProc(ctx context.Context, bin, root, cluster, name string) (*proc, error) {
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, bin, "keygen", "-o", filepath.Join(dir, name+".key")).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("keygen %s: %v: %s", name, err, out)
	}
	p := &proc{name: name, cluster: cluster, dir: dir, bin: bin, socket: filepath.Join(dir, "s.sock")}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "ed25519:") {
			p.pub = strings.TrimSpace(line)
		}
	}
	if p.pub == "" {
		return nil, fmt.Errorf("keygen %s printed no public key: %s", name, out)
	}
	p.admin, p.quic, p.tcp = freePort("tcp"), freePort("udp"), freePort("tcp")
	return p, nil
}

// peerEntry is how another node lists p: dialing it over tr, or
// accepting it ("" tr).
func (p *proc) peerEntry(tr string) string {
	s := fmt.Sprintf("  - cluster: %s\n    node: %s\n    public_key: %s\n", p.cluster, p.name, p.pub)
	if tr == "" {
		return s + "    mode: accept\n"
	}
	port := p.quic
	if tr == "tcp" {
		port = p.tcp
	}
	return s + fmt.Sprintf("    address: 127.0.0.1:%d\n    transport: %s\n    mode: connect\n", port, tr)
}

// writeConfig writes p's config with the given peers section.
func (p *proc) writeConfig(peers string) error {
	cfg := fmt.Sprintf(`cluster: %s
node: %s
identity: %s.key
listen:
  quic: 127.0.0.1:%d
  tcp: 127.0.0.1:%d
local:
  socket: %s
admin:
  listen: 127.0.0.1:%d
link:
  reconnect_min: 100ms
  reconnect_max: 1s
log:
  level: info
peers:
%s`, p.cluster, p.name, p.name, p.quic, p.tcp, p.socket, p.admin, peers)
	return os.WriteFile(filepath.Join(p.dir, "config.yaml"), []byte(cfg), 0o600)
}

func (p *proc) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(p.dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(p.bin, "run", "-c", filepath.Join(p.dir, "config.yaml"))
	p.cmd.Dir = p.dir
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	p.exited = exited
	go func(c *exec.Cmd) { c.Wait(); logf.Close(); close(exited) }(p.cmd)
	for deadline := time.Now().Add(15 * time.Second); ; {
		if _, err := p.get(ctx, "/healthz"); err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start; see %s", p.name, filepath.Join(p.dir, "daemon.log"))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: admin endpoint not up after 15s", p.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://127.0.0.1:%d%s", p.admin, path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s %s: %s", p.name, path, resp.Status)
	}
	return []byte(b.String()), sc.Err()
}

// metrics reads p's /metrics: every sample, by its name with labels.
func (p *proc) metrics(ctx context.Context) (map[string]float64, error) {
	b, err := p.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, nil
}

// linkUp tells whether p's link to node is up.
func (p *proc) linkUp(ctx context.Context, node string) bool {
	b, err := p.get(ctx, "/v1/links")
	if err != nil {
		return false
	}
	var links []struct {
		Node  string `json:"node"`
		State string `json:"state"`
	}
	if json.Unmarshal(b, &links) != nil {
		return false
	}
	for _, l := range links {
		if l.Node == node {
			return l.State == "up"
		}
	}
	return false
}

// freePort is a port free on 127.0.0.1 for network (tcp or udp) just now.
func freePort(network string) int {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
