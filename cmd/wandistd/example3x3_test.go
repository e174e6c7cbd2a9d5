package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
)

// TestThreeByThreeExample walks configs/examples/three-by-three as its
// README does: a CA per cluster, a key and a certificate per node, then
// nine daemons from the example's configs, which name no peer. Every node
// links to the eight others, and a message from each cluster reaches a
// member in another.
func TestThreeByThreeExample(t *testing.T) {
	src := filepath.Join("..", "..", "configs", "examples", "three-by-three")
	dir, err := os.MkdirTemp("", "w3x3")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	clusters := []string{"east", "west", "south"}
	var names []string
	for _, c := range clusters {
		mustCLI(t, "ca", "init", "-cluster", c, "-dir", filepath.Join(dir, "ca-"+c))
		for _, i := range []string{"1", "2", "3"} {
			n := c + "-" + i
			names = append(names, n)
			data, err := os.ReadFile(filepath.Join(src, n+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, n+".yaml"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			mustCLI(t, "keygen", "-o", filepath.Join(dir, n+".key"))
			mustCLI(t, "ca", "issue", "-ca", filepath.Join(dir, "ca-"+c), "-node", n,
				"-key", filepath.Join(dir, n+".key"), "-out", filepath.Join(dir, n+".crt"))
		}
	}
	ds := map[string]*daemon.Daemon{}
	for _, n := range names {
		cfg, err := configs.Load(filepath.Join(dir, n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Peers) != 0 {
			t.Fatalf("%s names %d peers; the example starts from seeds only", n, len(cfg.Peers))
		}
		d, err := daemon.New(cfg, daemon.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		ds[n] = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Every node knows every other: linked, or idle (a node of another
	// cluster beyond the 2 it keeps linked, with nothing to carry).
	waitFor(t, time.Minute, func() bool {
		for _, a := range names {
			n := 0
			for _, l := range ds[a].Status().Links {
				if l.State == daemon.StateUp || l.State == daemon.StateIdle {
					n++
				}
			}
			if n != len(names)-1 {
				return false
			}
		}
		return true
	})
	sub, err := client.Connect(ctx, client.Options{Socket: ds["south-3"].Config().Local.Socket})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	mb, err := sub.NewMailbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Join(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"east-1", "west-2"} {
		if err := ds[from].WaitMembers(ctx, "orders", 1); err != nil {
			t.Fatal(err)
		}
		c, err := client.Connect(ctx, client.Options{Socket: ds[from].Config().Local.Socket})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SendGroup(ctx, "orders", []byte("from "+from)); err != nil {
			t.Fatal(err)
		}
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Payload) != "from "+from {
			t.Fatalf("south-3 got %q, want %q", m.Payload, "from "+from)
		}
	}
}
