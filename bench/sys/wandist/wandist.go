// Package wandist runs wandist in the side-by-side benchmark: two wandistd
// processes (cluster east node east-1, cluster west node west-1) linked over
// QUIC or TCP/yamux, with SDK clients on each side: SDK client → daemon →
// link → daemon → SDK client.
package wandist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/wandist/wandist/bench/netutil"
	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/proxy"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/impair"
)

// ErrBadTransport is returned for a transport other than quic or tcp.
var ErrBadTransport = errors.New("transport must be quic or tcp")

// System is a pair of linked wandistd processes.
type System struct {
	Wandistd  string // path of the wandistd binary
	Dir       string // work directory for keys, configs, sockets and logs
	Transport string // "quic" or "tcp"
	Mode      client.Mode
	Proxied   bool // put a cut-able proxy on the link (for the restore workload)
	QUICConns int  // link.quic_connections of both daemons; 0: the default
	// East and West are where the daemons run (namespace, listen
	// address); zero: loopback in the current namespace.
	East, West netutil.Site

	east, west *node
	procs      []*proc.Process
	udp        *impair.UDPRelay
	tcp        *proxy.TCP
	pub, sub   *client.Client // east's sender, west's receiver
	req, srv   *client.Client // east's requester, west's server
	next       int            // group name counter
}

// node is one daemon's files and addresses.
type node struct {
	cluster, name string
	dir           string
	pubKey        string
	quic, tcp     int
	admin         int
	quicConns     int // link.quic_connections; 0: the default
	socket        string
	site          netutil.Site
}

// Name implements harness.System.
func (s *System) Name() string {
	n := "wandist-" + s.Transport
	if s.Mode == client.AtMostOnce {
		n += "-amo"
	}
	return n
}

// Procs returns the two daemons.
func (s *System) Procs() []*proc.Process { return s.procs }

// keygen makes a key file and returns its public key line.
func keygen(ctx context.Context, bin, path string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, "keygen", "-o", path).Output()
	if err != nil {
		return "", fmt.Errorf("wandistd keygen -o %s: %w", path, err)
	}
	for l := range strings.Lines(string(out)) {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "ed25519:") {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("wandistd keygen -o %s printed no ed25519: line: %q", path, out)
}

func newNode(ctx context.Context, bin, dir, cluster, name string, site netutil.Site) (*node, error) {
	n := &node{cluster: cluster, name: name, dir: dir, socket: filepath.Join(dir, name+".sock"), site: site}
	var err error
	for _, p := range []*int{&n.quic, &n.tcp, &n.admin} {
		if *p, err = netutil.FreePort(); err != nil {
			return nil, err
		}
	}
	if n.pubKey, err = keygen(ctx, bin, filepath.Join(dir, name+".key")); err != nil {
		return nil, err
	}
	return n, nil
}

// peer is one entry of a config's peers.
type peer struct {
	Cluster, Node, Address, Transport, Mode, Key string
}

var configTmpl = template.Must(template.New("config").Parse(`# written by the wandist benchmark
cluster: {{.N.Cluster}}
node: {{.N.Name}}
identity: {{.N.Name}}.key
{{- if .N.Quic}}
listen:
  quic: {{.N.Host}}:{{.N.Quic}}
  tcp: {{.N.Host}}:{{.N.TCP}}
{{- end}}
local:
  socket: {{.N.Socket}}
  max_clients: 4096
{{- if .Hold}}
  # Reliable mode end to end: a receiver that falls behind holds the
  # messages in the sender's buffer instead of dropping them.
  inbox_full: hold
{{- end}}
{{- if .N.QUICConns}}
link:
  quic_connections: {{.N.QUICConns}}
{{- end}}
{{- if .N.Admin}}
admin:
  listen: 127.0.0.1:{{.N.Admin}}
{{- end}}
log:
  level: warn
# Room for a whole one-way run: a full buffer refuses sends (ErrBusy), and
# the benchmark counts what is delivered, not what a sender was refused.
buffer:
  max_bytes: 2GiB
  max_messages: 20000000
peers:
{{- range .Peers}}
  - cluster: {{.Cluster}}
    node: {{.Node}}
{{- if .Address}}
    address: {{.Address}}
{{- end}}
    transport: {{.Transport}}
    mode: {{.Mode}}
    public_key: "{{.Key}}"
{{- end}}
`))

// writeConfig writes n's config with its peers and returns its path; hold
// sets local.inbox_full: hold.
func (n *node) writeConfig(peers []peer, hold bool) (string, error) {
	path := filepath.Join(n.dir, n.name+".yaml")
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	data := map[string]any{"N": map[string]any{"Cluster": n.cluster, "Name": n.name, "Quic": n.quic, "TCP": n.tcp, "Socket": n.socket, "Admin": n.admin, "QUICConns": n.quicConns, "Host": n.site.ListenHost()}, "Peers": peers, "Hold": hold}
	err = configTmpl.Execute(f, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write config %s: %w", path, err)
	}
	return path, nil
}

func (n *node) linkAddr(transport string) string {
	port := n.tcp
	if transport == "quic" {
		port = n.quic
	}
	return fmt.Sprintf("%s:%d", n.site.ListenHost(), port)
}

func startDaemon(bin, config, name, logDir string, site netutil.Site) (*proc.Process, error) {
	path, args := site.Command(bin, []string{"run", "-c", config})
	return proc.Start(proc.Spec{Name: name, Path: path, Args: args, LogDir: logDir})
}

// linkStatus is the part of /v1/status the benchmark reads.
type linkStatus struct {
	Links []struct {
		Cluster string `json:"cluster"`
		Node    string `json:"node"`
		State   string `json:"state"`
	} `json:"links"`
}

// linksUp returns how many of n's links are up.
func (n *node) linksUp(ctx context.Context) (int, error) {
	var st linkStatus
	if err := netutil.GetJSONAt(ctx, n.site, fmt.Sprintf("http://127.0.0.1:%d/v1/status", n.admin), &st); err != nil {
		return 0, err
	}
	up := 0
	for _, l := range st.Links {
		if l.State == "up" {
			up++
		}
	}
	return up, nil
}

// waitLinks waits until n has want links up (or its process exits).
func (n *node) waitLinks(ctx context.Context, p *proc.Process, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return netutil.Poll(ctx, 20*time.Millisecond, fmt.Sprintf("%d links up on %s", want, n.name), func() (bool, error) {
		select {
		case <-p.Done():
			return false, fmt.Errorf("%s exited; see %s", p.Name, p.Log)
		default:
		}
		up, err := n.linksUp(ctx)
		if err != nil {
			return false, nil // the admin listener may not be up yet
		}
		return up >= want, nil
	})
}

// Start writes keys and configs, starts west (accepts) and east (dials,
// through a proxy when Proxied), waits for the link, and connects the SDK
// clients. In reliable mode the receiving side holds what its consumer has
// no room for (local.inbox_full: hold, client HoldWhenFull) so that nothing
// is dropped end to end; at-most-once keeps the defaults (drop).
func (s *System) Start(ctx context.Context) error {
	if s.Transport != "quic" && s.Transport != "tcp" {
		return fmt.Errorf("wandist %q: %w", s.Transport, ErrBadTransport)
	}
	var err error
	if s.east, err = newNode(ctx, s.Wandistd, s.Dir, "east", "east-1", s.East); err != nil {
		return err
	}
	if s.west, err = newNode(ctx, s.Wandistd, s.Dir, "west", "west-1", s.West); err != nil {
		return err
	}
	target := s.west.linkAddr(s.Transport)
	if s.Proxied {
		if s.Transport == "quic" {
			if s.udp, err = impair.NewUDPRelay("127.0.0.1:0", target); err != nil {
				return fmt.Errorf("udp relay: %w", err)
			}
			target = s.udp.Addr()
		} else {
			if s.tcp, err = proxy.NewTCP("127.0.0.1:0", target); err != nil {
				return err
			}
			target = s.tcp.Addr()
		}
	}
	hold := s.Mode == client.Reliable
	s.east.quicConns, s.west.quicConns = s.QUICConns, s.QUICConns
	wcfg, err := s.west.writeConfig([]peer{{Cluster: "east", Node: "east-1", Transport: s.Transport, Mode: "accept", Key: s.east.pubKey}}, hold)
	if err != nil {
		return err
	}
	ecfg, err := s.east.writeConfig([]peer{{Cluster: "west", Node: "west-1", Address: target, Transport: s.Transport, Mode: "connect", Key: s.west.pubKey}}, hold)
	if err != nil {
		return err
	}
	wp, err := startDaemon(s.Wandistd, wcfg, "west-1", s.Dir, s.West)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, wp)
	ep, err := startDaemon(s.Wandistd, ecfg, "east-1", s.Dir, s.East)
	if err != nil {
		return err
	}
	s.procs = []*proc.Process{ep, wp}
	if err := s.east.waitLinks(ctx, ep, 1); err != nil {
		return err
	}
	if err := s.west.waitLinks(ctx, wp, 1); err != nil {
		return err
	}
	for _, c := range []struct {
		cl   **client.Client
		n    *node
		name string
		hold bool
	}{{&s.pub, s.east, "bench-pub", false}, {&s.req, s.east, "bench-req", false}, {&s.sub, s.west, "bench-sub", hold}, {&s.srv, s.west, "bench-srv", false}} {
		if *c.cl, err = client.Connect(ctx, client.Options{Socket: c.n.socket, Name: c.name, NoReconnect: true, HoldWhenFull: c.hold}); err != nil {
			return fmt.Errorf("connect %s to %s: %w", c.name, c.n.name, err)
		}
	}
	return nil
}

// Stop closes the clients, stops the daemons and the proxies.
func (s *System) Stop() error {
	var errs []error
	for _, c := range []*client.Client{s.pub, s.sub, s.req, s.srv} {
		if c != nil {
			c.Close()
		}
	}
	for _, p := range s.procs {
		errs = append(errs, p.Stop(10*time.Second))
	}
	if s.udp != nil {
		errs = append(errs, s.udp.Close())
	}
	if s.tcp != nil {
		errs = append(errs, s.tcp.Close())
	}
	return errors.Join(errs...)
}

// SetCut cuts or heals the link's path (Proxied only).
func (s *System) SetCut(on bool) {
	if s.udp != nil {
		s.udp.SetBlackhole(on)
	}
	if s.tcp != nil {
		s.tcp.SetCut(on)
	}
}

// CutKind says how the path is cut.
func (s *System) CutKind() string {
	if s.Transport == "quic" {
		return "UDP blackhole"
	}
	return "TCP reset, redials refused"
}

// dropped reads n's wandist_messages_dropped_total counters by reason from
// its /metrics (Prometheus text format).
func (n *node) dropped(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", n.admin), nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.site.HTTP().Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", n.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", n.name, err)
	}
	return parseDropped(string(b)), nil
}

// parseDropped picks the lines wandist_messages_dropped_total{reason="R"} V.
func parseDropped(text string) map[string]float64 {
	const prefix = `wandist_messages_dropped_total{reason="`
	out := map[string]float64{}
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		reason, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[reason] = v
		}
	}
	return out
}
