package configs

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// setUpExamples copies the two-cluster example configs into a temporary
// directory and creates the public key files the walkthrough would.
func setUpExamples(t *testing.T) (dir string, east, west ed25519.PublicKey) {
	t.Helper()
	dir = t.TempDir()
	for _, name := range []string{"east-1.yaml", "west-1.yaml"} {
		data, err := os.ReadFile(filepath.Join("examples", "two-cluster", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, name, string(data))
	}
	east, eastText := newKey(t)
	west, westText := newKey(t)
	writeFile(t, dir, "east-1.pub", eastText+"\n")
	writeFile(t, dir, "west-1.pub", "# west-1\n"+westText+"\n")
	return dir, east, west
}

func TestExampleEast(t *testing.T) {
	dir, _, west := setUpExamples(t)
	path := filepath.Join(dir, "east-1.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Path != path || c.Cluster != "east" || c.Node != "east-1" {
		t.Errorf("path/cluster/node = %q %q %q", c.Path, c.Cluster, c.Node)
	}
	if want := filepath.Join(dir, "east-1.key"); c.Identity != want {
		t.Errorf("Identity = %q, want %q", c.Identity, want)
	}
	if c.Listen != (Listen{QUIC: "127.0.0.1:7101", TCP: "127.0.0.1:7102"}) {
		t.Errorf("Listen = %+v", c.Listen)
	}
	if c.Local.Socket != filepath.Join(dir, "run", "east-1.sock") || c.Admin.Listen != "127.0.0.1:7103" {
		t.Errorf("socket %q admin %q", c.Local.Socket, c.Admin.Listen)
	}
	if len(c.Peers) != 1 {
		t.Fatalf("%d peers, want 1", len(c.Peers))
	}
	p := c.Peers[0]
	if p.Cluster != "west" || p.Node != "west-1" || p.Address != "127.0.0.1:7201" ||
		p.Transport != TransportQUIC || p.Mode != ModeConnect {
		t.Errorf("peer = %+v", p)
	}
	if len(p.PublicKeys) != 1 || !p.PublicKeys[0].Equal(west) {
		t.Errorf("peer keys = %v, want west's key", p.PublicKeys)
	}
	if p.Buffer != Default().Buffer || p.Line == 0 {
		t.Errorf("peer buffer %+v line %d", p.Buffer, p.Line)
	}
	if c.Link != Default().Link || c.Groups.UnreachableGrace != 30*time.Second {
		t.Errorf("link %+v groups %+v", c.Link, c.Groups)
	}
}

func TestExampleWest(t *testing.T) {
	dir, east, _ := setUpExamples(t)
	c, err := Load(filepath.Join(dir, "west-1.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Cluster != "west" || c.Node != "west-1" || c.Identity != filepath.Join(dir, "west-1.key") {
		t.Errorf("cluster/node/identity = %q %q %q", c.Cluster, c.Node, c.Identity)
	}
	if c.Listen != (Listen{QUIC: "127.0.0.1:7201", TCP: "127.0.0.1:7202"}) ||
		c.Local.Socket != filepath.Join(dir, "run", "west-1.sock") || c.Admin.Listen != "127.0.0.1:7203" {
		t.Errorf("listen %+v socket %q admin %q", c.Listen, c.Local.Socket, c.Admin.Listen)
	}
	if len(c.Peers) != 1 {
		t.Fatalf("%d peers, want 1", len(c.Peers))
	}
	p := c.Peers[0]
	if p.Cluster != "east" || p.Node != "east-1" || p.Address != "" || p.Mode != ModeAccept {
		t.Errorf("peer = %+v", p)
	}
	if len(p.PublicKeys) != 1 || !p.PublicKeys[0].Equal(east) {
		t.Errorf("peer keys = %v, want east's key", p.PublicKeys)
	}
}

// Without the walkthrough's .pub files the examples fail with errors
// naming public_key_file on its line.
func TestExampleWithoutKeys(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("examples", "two-cluster", "east-1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err = Parse(data, filepath.Join(dir, "east-1.yaml"))
	list := errorList(t, err)
	if len(list) != 1 || list[0].Key != "peers[0].public_key_file" || list[0].Line != lineOfText(t, data, "public_key_file:") {
		t.Fatalf("errors = %v", err)
	}
	if !os.IsNotExist(list[0].Err) {
		t.Errorf("cause %v is not a not-exist error", list[0].Err)
	}
}

// lineOfText returns the 1-based line of the first line containing s.
func lineOfText(t *testing.T, data []byte, s string) int {
	t.Helper()
	line := 1
	for i := 0; i < len(data); i++ {
		if i+len(s) <= len(data) && string(data[i:i+len(s)]) == s {
			return line
		}
		if data[i] == '\n' {
			line++
		}
	}
	t.Fatalf("%q not found", s)
	return 0
}
