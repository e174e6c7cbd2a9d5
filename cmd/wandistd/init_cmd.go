package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
)

func init() {
	commands["init"] = command{
		"write the two-cluster example (configs and keys) into a folder: wandistd init [--dir D] [--port-base N] [-f]",
		cmdInit,
	}
}

// Ports of the generated example: node i (east-1 = 0, west-1 = 1) listens
// on base + 100*i + 1 (QUIC), + 2 (TCP) and + 3 (admin). The default base,
// 7100, gives the ports of configs/examples/two-cluster.
const (
	defaultPortBase = 7100
	maxPortBase     = 65535 - 103
)

// exampleNode is one node of the generated two-cluster example.
type exampleNode struct {
	cluster, node string
	quic, tcp     int
	admin         int
}

func exampleNodes(base int) [2]exampleNode {
	return [2]exampleNode{
		{"east", "east-1", base + 1, base + 2, base + 3},
		{"west", "west-1", base + 101, base + 102, base + 103},
	}
}

// exampleConfig is node n's config; east-1 dials west-1 over QUIC, west-1
// only accepts. The socket and the spool are under the config's folder.
func exampleConfig(n, other exampleNode, base int) string {
	peer := fmt.Sprintf(`  - cluster: %s
    node: %s
    mode: accept
    public_key_file: %s.pub
`, other.cluster, other.node, other.node)
	if n.cluster == "east" {
		peer = fmt.Sprintf(`  - cluster: %s
    node: %s
    address: 127.0.0.1:%d
    transport: quic
    mode: connect
    public_key_file: %s.pub
`, other.cluster, other.node, other.quic, other.node)
	}
	return fmt.Sprintf(`# wandistd config for node %q of cluster %q: one half of a two-cluster
# setup on loopback, written by "wandistd init --port-base %d"; %s.yaml is
# the other half. Relative paths are resolved against this file's folder.

cluster: %s
node: %s
identity: %s.key          # this node's private key (0600)

listen:
  quic: 127.0.0.1:%d
  tcp: 127.0.0.1:%d

local:
  socket: run/%s.sock     # created with its folder (0750) at start

admin:
  listen: 127.0.0.1:%d

spool:
  dir: spool/%s           # durable messages (--mode durable) survive kill -9 here

log:
  level: info
  format: text

peers:
%s`, n.node, n.cluster, base, other.node, n.cluster, n.node, n.node, n.quic, n.tcp, n.node, n.admin, n.node, peer)
}

func cmdInit(_ context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("init", "[--dir D] [--port-base N] [-f]", stdout)
	dir := fs.String("dir", "wandist-example", "the `folder` to write the configs, keys, sockets (run/) and spools (spool/) into")
	base := fs.Int("port-base", defaultPortBase, "east-1 listens on `N`+1 (QUIC), N+2 (TCP), N+3 (admin); west-1 on N+101, N+102, N+103")
	force := fs.Bool("f", false, "overwrite existing configs and keys")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	}
	if *base < 1024 || *base > maxPortBase {
		return usageErr(fs, "--port-base %d: must be 1024..%d (the ports go up to N+103)", *base, maxPortBase)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	nodes := exampleNodes(*base)
	if err := writeExample(abs, nodes, *base, *force); err != nil {
		return err
	}
	printExample(stdout, abs, nodes)
	return nil
}

// writeExample writes the keys and configs of nodes into dir, then loads
// each config as the daemon would, so that a path too long for a socket
// (or any other problem) is reported now.
func writeExample(dir string, nodes [2]exampleNode, base int, force bool) error {
	if !force {
		for _, n := range nodes {
			for _, ext := range []string{".yaml", ".key", ".pub"} {
				p := filepath.Join(dir, n.node+ext)
				if _, err := os.Lstat(p); err == nil {
					return fmt.Errorf("%s: %w (use -f to overwrite)", p, os.ErrExist)
				}
			}
		}
	}
	for _, n := range nodes {
		key, err := auth.GenerateKeyFile(filepath.Join(dir, n.node+".key"), force)
		if err != nil {
			return err
		}
		pub := auth.FormatPublicKey(key.Public().(ed25519.PublicKey))
		line := fmt.Sprintf("%s # %s/%s, from wandistd init\n", pub, n.cluster, n.node)
		if err := os.WriteFile(filepath.Join(dir, n.node+".pub"), []byte(line), 0o644); err != nil {
			return err
		}
	}
	for i, n := range nodes {
		p := filepath.Join(dir, n.node+".yaml")
		if err := os.WriteFile(p, []byte(exampleConfig(n, nodes[1-i], base)), 0o644); err != nil {
			return err
		}
	}
	var errs []error
	for _, n := range nodes {
		if _, err := configs.Load(filepath.Join(dir, n.node+".yaml")); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the configs written do not load (a shorter --dir may help): %w", err)
	}
	return nil
}

func printExample(w io.Writer, dir string, nodes [2]exampleNode) {
	fmt.Fprintf(w, "wrote the two-cluster example in %s:\n", dir)
	for _, n := range nodes {
		fmt.Fprintf(w, "  %s.yaml: QUIC 127.0.0.1:%d, TCP 127.0.0.1:%d, admin 127.0.0.1:%d, socket run/%s.sock\n",
			n.node, n.quic, n.tcp, n.admin, n.node)
	}
	fmt.Fprintf(w, "  keys: %s.key %s.key (private, 0600), %s.pub %s.pub\n", nodes[0].node, nodes[1].node, nodes[0].node, nodes[1].node)
	fmt.Fprintf(w, "next, from %s:\n", dir)
	fmt.Fprintf(w, "  wandistd run -c west-1.yaml 2> west-1.log &\n")
	fmt.Fprintf(w, "  wandistd run -c east-1.yaml 2> east-1.log &\n")
	fmt.Fprintf(w, "  wandistd status -c east-1.yaml\n")
}
