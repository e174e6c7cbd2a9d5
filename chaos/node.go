//go:build linux

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ErrDaemon is wrapped by errors about a wandistd process (it would not
// start, it died, its admin endpoint failed).
var ErrDaemon = errors.New("chaos: daemon")

// BuildDaemon builds cmd/wandistd (without -race) into dir and returns the
// binary's path.
func BuildDaemon(ctx context.Context, dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil && os.Getenv("GOROOT") != "" {
		goTool, err = filepath.Join(os.Getenv("GOROOT"), "bin", "go"), nil
	}
	if err != nil {
		return "", fmt.Errorf("%w: building wandistd needs the go command in PATH", ErrUnsupported)
	}
	bin := filepath.Join(dir, "wandistd")
	if _, err := run(ctx, goTool, "build", "-o", bin, "github.com/wandist/wandist/cmd/wandistd"); err != nil {
		return "", fmt.Errorf("building wandistd: %w", err)
	}
	return bin, nil
}

// NodeConfig is what a node's YAML config says; Render writes it.
type NodeConfig struct {
	Cluster, Node string
	IP            string // listen address inside its namespace
	QUICPort      int
	TCPPort       int
	AdminPort     int
	Socket        string
	Spool         bool  // give the node a spool ("spool" folder beside the config)
	SpoolMaxBytes int64 // 0: the default
	BufferBytes   int64 // buffer.max_bytes for every peer
	ClientBuffer  int64 // local.client_buffer (0: not set)
	InboxHold     bool  // local.inbox_full: hold
	QUICConns     int   // link.quic_connections (0: not set)
	Peers         []PeerConfig

	// A cluster CA, gossip and remotes by seeds (MeshConfig's CASeeds);
	// all empty otherwise.
	Certificate string   // certificate: the node's, issued by its cluster's CA
	TrustCAs    []string // trust.ca_files: its cluster's CA
	GossipBind  string   // gossip.bind
	GossipSeeds []string // gossip.seeds
	GossipKey   string   // gossip.secret_file
	Remotes     []RemoteConfig
	RejoinGrace time.Duration // groups.rejoin_grace (0: not set)
}

// RemoteConfig is one entry of a node's remotes.
type RemoteConfig struct {
	Cluster   string
	Seeds     []string
	Transport string
	CAFile    string
	Topology  string // "" (mesh) or gateway
	Gateways  int    // with Topology gateway
}

// PeerConfig is one entry of a node's peers.
type PeerConfig struct {
	Cluster, Node string
	Address       string // "" for accept-only
	Transport     string // quic or tcp
	PublicKey     string
}

// Render returns the node's config file.
func (c NodeConfig) Render() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cluster: %s\nnode: %s\nidentity: %s.key\n", c.Cluster, c.Node, c.Node)
	fmt.Fprintf(&b, "listen:\n  quic: %s:%d\n  tcp: %s:%d\n", c.IP, c.QUICPort, c.IP, c.TCPPort)
	fmt.Fprintf(&b, "local:\n  socket: %s\n", c.Socket)
	if c.ClientBuffer > 0 {
		fmt.Fprintf(&b, "  client_buffer: %d\n", c.ClientBuffer)
	}
	if c.InboxHold {
		b.WriteString("  inbox_full: hold\n")
	}
	fmt.Fprintf(&b, "admin:\n  listen: 127.0.0.1:%d\n", c.AdminPort)
	// Fast detection so that scenarios stay short; reconnect_max bounds the
	// time from a heal to the next dial.
	b.WriteString("link:\n  keepalive_interval: 500ms\n  keepalive_timeout: 3s\n  handshake_timeout: 3s\n  reconnect_min: 100ms\n  reconnect_max: 1s\n")
	if c.QUICConns > 0 {
		fmt.Fprintf(&b, "  quic_connections: %d\n", c.QUICConns)
	}
	// groups.unreachable_grace keeps its default (30 s): past it a peer is
	// only reported, so the faults that last longer (partition-long,
	// flapping) must lose nothing either.
	fmt.Fprintf(&b, "buffer:\n  max_bytes: %d\n", c.BufferBytes)
	if c.Spool {
		b.WriteString("spool:\n  dir: spool\n")
		if c.SpoolMaxBytes > 0 {
			fmt.Fprintf(&b, "  max_bytes: %d\n", c.SpoolMaxBytes)
		}
	}
	b.WriteString("log:\n  level: info\n")
	if c.RejoinGrace > 0 {
		fmt.Fprintf(&b, "groups:\n  rejoin_grace: %s\n", c.RejoinGrace)
	}
	c.renderSeeds(&b)
	if len(c.Peers) == 0 {
		return b.String()
	}
	b.WriteString("peers:\n")
	for _, p := range c.Peers {
		fmt.Fprintf(&b, "  - cluster: %s\n    node: %s\n    public_key: %s\n", p.Cluster, p.Node, p.PublicKey)
		if p.Address != "" {
			fmt.Fprintf(&b, "    address: %s\n    transport: %s\n    mode: connect\n", p.Address, p.Transport)
		} else {
			b.WriteString("    mode: accept\n")
		}
	}
	return b.String()
}

// Node is one wandistd process in a namespace, restartable.
type Node struct {
	Name   string // node name, e.g. "east-1"
	NS     string // its network namespace
	Dir    string // config, key, spool and log
	Socket string
	Admin  int // admin port (127.0.0.1 inside NS)
	bin    string
	http   *http.Client

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd ended
	peakKB   int64         // highest VmHWM over every process of this node
	restarts int
}

// Keygen writes dir/name.key and returns the public key line.
func Keygen(ctx context.Context, bin, dir, name string) (string, error) {
	out, err := run(ctx, bin, "keygen", "-o", filepath.Join(dir, name+".key"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "ed25519:") {
			return strings.TrimSpace(line), nil
		}
	}
	return "", fmt.Errorf("%w: keygen printed no public key: %q", ErrDaemon, out)
}

// NewNode writes the node's config into dir; Start runs it.
func NewNode(bin, ns, dir string, cfg NodeConfig) (*Node, error) {
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg.Render()), 0o600); err != nil {
		return nil, err
	}
	return &Node{Name: cfg.Node, NS: ns, Dir: dir, Socket: cfg.Socket, Admin: cfg.AdminPort, bin: bin,
		http: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: nsDialer(ns), DisableKeepAlives: true}}}, nil
}

// Start runs the daemon and waits until its admin endpoint answers.
func (n *Node) Start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(n.Dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", "netns", "exec", n.NS, n.bin, "run", "-c", filepath.Join(n.Dir, "config.yaml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%w: start %s: %v", ErrDaemon, n.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := n.get(ctx, "/healthz"); err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%w: %s exited at start (%s): %s", ErrDaemon, n.Name, cmd.ProcessState, n.LogTail(5))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s: admin endpoint not up after 15s: %s", ErrDaemon, n.Name, n.LogTail(5))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID returns the running process's id, 0 if none runs.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	select {
	case <-n.exited:
		return 0
	default:
		return n.cmd.Process.Pid
	}
}

// Kill9 kills the daemon with SIGKILL and waits for it.
func (n *Node) Kill9() { n.signal(syscall.SIGKILL, time.Minute) }

// Stop asks the daemon to stop (SIGTERM); after 10 s it kills it.
func (n *Node) Stop() {
	if !n.signal(syscall.SIGTERM, 10*time.Second) {
		n.signal(syscall.SIGKILL, time.Minute)
	}
}

// Pause stops (SIGSTOP) or resumes (SIGCONT) the daemon.
func (n *Node) Pause(on bool) {
	sig := syscall.SIGCONT
	if on {
		sig = syscall.SIGSTOP
	}
	if pid := n.PID(); pid != 0 {
		_ = syscall.Kill(pid, sig)
	}
}

// signal sends sig and waits up to wait for the exit; false if it did not.
func (n *Node) signal(sig syscall.Signal, wait time.Duration) bool {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return true
	}
	n.sampleMemory()
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		n.mu.Lock()
		n.restarts++
		n.mu.Unlock()
		return true
	case <-time.After(wait):
		return false
	}
}

// Memory returns the running process's resident and peak resident memory
// in KiB (0, 0 if none runs), and updates the node's peak.
func (n *Node) Memory() (rssKB, hwmKB int64) {
	pid := n.PID()
	if pid == 0 {
		return 0, 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		num, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rssKB = num
		case "VmHWM":
			hwmKB = num
		}
	}
	n.mu.Lock()
	n.peakKB = max(n.peakKB, hwmKB)
	n.mu.Unlock()
	return rssKB, hwmKB
}

func (n *Node) sampleMemory() { n.Memory() }

// PeakKB is the highest peak resident memory of every process of the node.
func (n *Node) PeakKB() int64 {
	n.Memory()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peakKB
}

func (n *Node) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", n.Admin, path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", ErrDaemon, n.Name, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s %s: HTTP %d: %s", ErrDaemon, n.Name, path, resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// Status is the part of /v1/status the suite reads.
type Status struct {
	Links []LinkStatus `json:"links"`
	Spool *struct {
		Bytes int64  `json:"bytes"`
		Error string `json:"error"`
	} `json:"spool"`
}

// LinkStatus is one peer's link and buffer, from /v1/status.
type LinkStatus struct {
	Cluster        string            `json:"cluster"`
	Node           string            `json:"node"`
	State          string            `json:"state"`
	Transport      string            `json:"transport"`
	RTTSeconds     float64           `json:"rtt_seconds"`
	QueuedMessages int               `json:"queued_messages"`
	QueuedBytes    int64             `json:"queued_bytes"`
	Redelivered    uint64            `json:"redelivered"`
	Duplicates     uint64            `json:"duplicates_dropped"`
	Rejected       uint64            `json:"rejected_busy"`
	Discarded      map[string]uint64 `json:"discarded"`
}

// Status fetches the daemon's /v1/status.
func (n *Node) Status(ctx context.Context) (Status, error) {
	var st Status
	body, err := n.get(ctx, "/v1/status")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("%w: %s /v1/status: %v", ErrDaemon, n.Name, err)
	}
	return st, nil
}

// Link returns the status of the link to node peer ("" if unknown).
func (st Status) Link(peer string) LinkStatus {
	for _, l := range st.Links {
		if l.Node == peer {
			return l
		}
	}
	return LinkStatus{}
}

// Metrics fetches /metrics and sums each metric family's samples whose
// labels include every given label (e.g. reason=inbox_full).
func (n *Node) Metrics(ctx context.Context) (map[string]float64, error) {
	body, err := n.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %s /metrics: %v", ErrDaemon, n.Name, err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[name] += v
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" || l.GetName() == "kind" {
					out[name+"{"+l.GetName()+"="+l.GetValue()+"}"] += v
				}
			}
		}
	}
	return out, nil
}

// WaitLink polls until the link to peer is up (or down, with up false).
func (n *Node) WaitLink(ctx context.Context, peer string, up bool, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		st, err := n.Status(ctx)
		if err == nil && (st.Link(peer).State == "up") == up {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("%w: %s: link to %s not %s after %v (last: %+v, %v)", ErrDaemon, n.Name, peer, map[bool]string{true: "up", false: "down"}[up], timeout, st.Link(peer), err)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LogTail returns the last n lines of the daemon's log.
func (n *Node) LogTail(lines int) string {
	data, _ := os.ReadFile(filepath.Join(n.Dir, "daemon.log"))
	all := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// renderSeeds writes the certificate, trust, gossip and remotes sections
// of the CASeeds mode.
func (c NodeConfig) renderSeeds(b *strings.Builder) {
	if c.Certificate != "" {
		fmt.Fprintf(b, "certificate: %s\n", c.Certificate)
	}
	if len(c.TrustCAs) > 0 {
		fmt.Fprintf(b, "trust:\n  ca_files: [%s]\n", strings.Join(c.TrustCAs, ", "))
	}
	if c.GossipBind != "" {
		fmt.Fprintf(b, "gossip:\n  bind: %s\n  secret_file: %s\n", c.GossipBind, c.GossipKey)
		if len(c.GossipSeeds) > 0 {
			fmt.Fprintf(b, "  seeds: [%s]\n", strings.Join(c.GossipSeeds, ", "))
		}
	}
	if len(c.Remotes) > 0 {
		b.WriteString("remotes:\n")
		for _, r := range c.Remotes {
			fmt.Fprintf(b, "  - cluster: %s\n    seeds: [%s]\n    transport: %s\n    ca_files: [%s]\n",
				r.Cluster, strings.Join(r.Seeds, ", "), r.Transport, r.CAFile)
			if r.Topology != "" {
				fmt.Fprintf(b, "    topology: %s\n    gateways: %d\n", r.Topology, r.Gateways)
			}
		}
	}
}
