//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Mesh is a wandistd daemon on every node of a MultiTopology, configured
// by MeshConfig.
type Mesh struct {
	Topo *MultiTopology
	Bin  string
	mode ConfigMode // the layout's, fixed

	mu     sync.Mutex
	layout MeshLayout       // guarded by mu; Nodes grows with AddNode
	nodes  map[string]*Node // guarded by mu
}

// NewMesh makes a key and writes the config of every node of topo (under
// root), without starting them.
func NewMesh(ctx context.Context, topo *MultiTopology, bin, root string, mode ConfigMode, transport string, bufferBytes, clientBuffer int64) (*Mesh, error) {
	m := &Mesh{Topo: topo, Bin: bin, mode: mode, nodes: map[string]*Node{},
		layout: MeshLayout{Mode: mode, Transport: transport, Root: root, BufferBytes: bufferBytes, ClientBuffer: clientBuffer}}
	if mode.usesSeeds() {
		if err := m.initCAs(ctx); err != nil {
			return nil, err
		}
	}
	for _, n := range topo.Nodes("") {
		if err := m.addKey(ctx, n); err != nil {
			return nil, err
		}
	}
	for _, n := range topo.Nodes("") {
		if _, err := m.writeNode(n.Name); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// initCAs makes every cluster's CA and gossip key with wandistd ca init.
func (m *Mesh) initCAs(ctx context.Context) error {
	seen := map[string]bool{}
	for _, n := range m.Topo.Nodes("") {
		if seen[n.Cluster] {
			continue
		}
		seen[n.Cluster] = true
		if _, err := run(ctx, m.Bin, "ca", "init", "-cluster", n.Cluster, "-dir", m.layout.CADir(n.Cluster)); err != nil {
			return fmt.Errorf("chaos: CA of cluster %s: %w", n.Cluster, err)
		}
	}
	return nil
}

// addKey makes a node's directory and key and adds it to the layout.
func (m *Mesh) addKey(ctx context.Context, n NodeNet) error {
	dir := m.layout.NodeDir(n.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := Keygen(ctx, m.Bin, dir, n.Name)
	if err != nil {
		return err
	}
	if m.mode.usesSeeds() {
		if _, err := run(ctx, m.Bin, "ca", "issue", "-ca", m.layout.CADir(n.Cluster), "-node", n.Name,
			"-key", filepath.Join(dir, n.Name+".key"), "-out", filepath.Join(dir, n.Name+".crt")); err != nil {
			return fmt.Errorf("chaos: certificate of %s: %w", n.Name, err)
		}
	}
	m.mu.Lock()
	m.layout.Nodes = append(m.layout.Nodes, MeshNode{NodeNet: n, PublicKey: key})
	m.mu.Unlock()
	return nil
}

// writeNode writes a node's config from the current layout.
func (m *Mesh) writeNode(name string) (*Node, error) {
	m.mu.Lock()
	layout := m.layout
	m.mu.Unlock()
	cfg, err := MeshConfig(layout, name)
	if err != nil {
		return nil, err
	}
	nn, _ := m.Topo.Node(name)
	n, err := NewNode(m.Bin, nn.NS, layout.NodeDir(name), cfg)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.nodes[name] = n
	m.mu.Unlock()
	return n, nil
}

// Mode returns the mesh's config mode.
func (m *Mesh) Mode() ConfigMode { return m.mode }

// Node returns the daemon of a node (nil if none).
func (m *Mesh) Node(name string) *Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nodes[name]
}

// Names returns the nodes of a cluster ("": every node), sorted.
func (m *Mesh) Names(cluster string) []string {
	var out []string
	for _, n := range m.Topo.Nodes(cluster) {
		if m.Node(n.Name) != nil {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out
}

// StartAll starts every daemon, side by side.
func (m *Mesh) StartAll(ctx context.Context) error {
	names := m.Names("")
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { errs[i] = m.Node(name).Start(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// AddNode adds a node to cluster's LAN, writes its config and starts its
// daemon: a node joining a running cluster. It needs a mode in which the
// other nodes learn of it without a new config (CASeeds).
func (m *Mesh) AddNode(ctx context.Context, cluster string) (*Node, error) {
	if !m.mode.usesSeeds() {
		return nil, fmt.Errorf("%w: a node joins a running mesh only by seeds (mode %q), not in mode %q", ErrModeNotReady, CASeeds, m.mode)
	}
	nn, err := m.Topo.AddNode(ctx, cluster)
	if err != nil {
		return nil, err
	}
	if err := m.addKey(ctx, nn); err != nil {
		return nil, err
	}
	n, err := m.writeNode(nn.Name)
	if err != nil {
		return nil, err
	}
	return n, n.Start(ctx)
}

// Stop stops every daemon.
func (m *Mesh) Stop() {
	var wg sync.WaitGroup
	for _, name := range m.Names("") {
		wg.Go(m.Node(name).Stop)
	}
	wg.Wait()
}

// linksDown returns how many of node's links to the other nodes are not
// up, or why its status could not be read.
func (m *Mesh) linksDown(ctx context.Context, name string) (int, string) {
	st, err := m.Node(name).Status(ctx)
	if err != nil {
		return -1, err.Error()
	}
	down := 0
	for _, p := range m.Names("") {
		if p == name {
			continue
		}
		// An on-demand peer (a discovered node of another cluster that is
		// not one of the k always linked) with nothing queued is idle, as
		// it should be.
		if l := st.Link(p); l.State != "up" && !(m.mode.usesSeeds() && l.State == "idle") {
			down++
		}
	}
	return down, ""
}

// WaitAllLinks polls until every running node has its link to every other
// node up, and returns how long that took.
func (m *Mesh) WaitAllLinks(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		var missing []string
		for _, name := range m.Names("") {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			down, why := m.linksDown(sctx, name)
			cancel()
			switch {
			case why != "":
				missing = append(missing, name+": "+why)
			case down > 0:
				missing = append(missing, fmt.Sprintf("%s: %d links not up", name, down))
			}
		}
		if len(missing) == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("%w: links not all up after %v: %v", ErrDaemon, timeout, missing)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ReadLayout returns a copy of the mesh's layout.
func (m *Mesh) ReadLayout() MeshLayout {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.layout
	l.Nodes = append([]MeshNode(nil), l.Nodes...)
	return l
}
