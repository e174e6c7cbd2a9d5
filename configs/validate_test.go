package configs

import (
	"crypto/ed25519"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// inCode returns a valid Config built the way the in-process demo would.
func inCode(t *testing.T) *Config {
	pub, _ := newKey(t)
	c := Default()
	c.Cluster, c.Node, c.Identity = "east", "n1", "/keys/n1.key"
	c.Listen.QUIC = "127.0.0.1:0"
	c.Peers = []Peer{{Cluster: "west", Node: "w1", Address: "127.0.0.1:7201", PublicKeys: []ed25519.PublicKey{pub}}}
	return c
}

func TestValidateInCode(t *testing.T) {
	c := inCode(t)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.Local.Socket != DefaultSocket() {
		t.Errorf("socket = %q, want %q", c.Local.Socket, DefaultSocket())
	}
	p := c.Peers[0]
	if p.Transport != TransportQUIC || p.Mode != ModeBoth || p.Buffer != c.Buffer {
		t.Errorf("peer defaults not filled: %+v", p)
	}
}

// A bare struct literal gets the defaults whose zero value is invalid.
func TestValidateFillsZeroFields(t *testing.T) {
	pub, _ := newKey(t)
	c := &Config{
		Cluster: "east", Node: "n1", Identity: "n1.key",
		Buffer: Buffer{MaxMessages: 7},
		Peers: []Peer{
			{Cluster: "west", Node: "w1", Address: "w1:7201", PublicKeys: []ed25519.PublicKey{pub}},
			{Cluster: "west", Node: "w2", Address: "w2:7201", PublicKeys: []ed25519.PublicKey{pub},
				Buffer: Buffer{MaxBytes: 1 << 20}},
		},
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	d := Default()
	if c.Link != d.Link || c.Log != d.Log {
		t.Errorf("link %+v log %+v", c.Link, c.Log)
	}
	want := Buffer{MaxBytes: d.Buffer.MaxBytes, MaxMessages: 7, Overflow: OverflowReject}
	if c.Buffer != want || c.Peers[0].Buffer != want {
		t.Errorf("buffers %+v %+v, want %+v", c.Buffer, c.Peers[0].Buffer, want)
	}
	if want.MaxBytes = 1 << 20; c.Peers[1].Buffer != want {
		t.Errorf("peers[1].buffer = %+v, want %+v", c.Peers[1].Buffer, want)
	}
	if c.Groups.UnreachableGrace != 0 || c.Groups.RejoinGrace != 0 {
		t.Errorf("zero graces changed to %v, %v", c.Groups.UnreachableGrace, c.Groups.RejoinGrace)
	}
	if g := c.Groups; g.MaxMembersPerPeer != d.Groups.MaxMembersPerPeer || g.MaxSnapshotBytes != d.Groups.MaxSnapshotBytes || g.SnapshotTimeout != d.Groups.SnapshotTimeout {
		t.Errorf("membership budget not filled: %+v", g)
	}
}

func TestValidateErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(c *Config)
		key    string
	}{
		{"missing cluster", func(c *Config) { c.Cluster = "" }, "cluster"},
		{"bad node", func(c *Config) { c.Node = "-n1" }, "node"},
		{"missing identity", func(c *Config) { c.Identity = "" }, "identity"},
		{"bad listen", func(c *Config) { c.Listen.TCP = "localhost" }, "listen.tcp"},
		{"bad admin", func(c *Config) { c.Admin.Listen = "x:y" }, "admin.listen"},
		{"timeout below interval", func(c *Config) { c.Link.KeepaliveTimeout = time.Millisecond }, "link.keepalive_timeout"},
		{"negative handshake", func(c *Config) { c.Link.HandshakeTimeout = -time.Second }, "link.handshake_timeout"},
		{"frame size", func(c *Config) { c.Link.MaxFrameSize = 100 }, "link.max_frame_size"},
		{"max streams", func(c *Config) { c.Link.MaxStreams = 3 }, "link.max_streams"},
		{"handshake rate", func(c *Config) { c.Link.HandshakeRate = -1 }, "link.handshake_rate"},
		{"handshake burst", func(c *Config) { c.Link.HandshakeBurst = 1 << 20 }, "link.handshake_burst"},
		{"overflow", func(c *Config) { c.Buffer.Overflow = "block" }, "buffer.overflow"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"client buffer", func(c *Config) { c.Local.ClientBuffer = 1000 }, "local.client_buffer"},
		{"hello timeout too short", func(c *Config) { c.Local.HelloTimeout = time.Millisecond }, "local.hello_timeout"},
		{"hello timeout too long", func(c *Config) { c.Local.HelloTimeout = time.Hour }, "local.hello_timeout"},
		{"inbox full", func(c *Config) { c.Local.InboxFull = "block" }, "local.inbox_full"},
		{"peer transport", func(c *Config) { c.Peers[0].Transport = "udp" }, "peers[0].transport"},
		{"peer mode", func(c *Config) { c.Peers[0].Mode = ModeConnect; c.Peers[0].Address = "" }, "peers[0].mode"},
		{"peer address", func(c *Config) { c.Peers[0].Address = "w1" }, "peers[0].address"},
		{"peer self", func(c *Config) { c.Peers[0].Cluster, c.Peers[0].Node = "east", "n1" }, "peers[0]"},
		{"duplicate peer", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, "peers[1]"},
		{"no keys", func(c *Config) { c.Peers[0].PublicKeys = nil }, "peers[0]"},
		{"short key", func(c *Config) { c.Peers[0].PublicKeys = []ed25519.PublicKey{make([]byte, 31)} }, "peers[0].public_keys[0]"},
		{"members per peer", func(c *Config) { c.Groups.MaxMembersPerPeer = -1 }, "groups.max_members_per_peer"},
		{"snapshot bytes", func(c *Config) { c.Groups.MaxSnapshotBytes = 1 << 40 }, "groups.max_snapshot_bytes"},
		{"snapshot timeout", func(c *Config) { c.Groups.SnapshotTimeout = 2 * time.Hour }, "groups.snapshot_timeout"},
		{"rejoin grace negative", func(c *Config) { c.Groups.RejoinGrace = -time.Second }, "groups.rejoin_grace"},
		{"rejoin grace too long", func(c *Config) { c.Groups.RejoinGrace = 11 * time.Minute }, "groups.rejoin_grace"},
		{"peer buffer", func(c *Config) { c.Peers[0].Buffer = c.Buffer; c.Peers[0].Buffer.MaxAge = -time.Second }, "peers[0].buffer.max_age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := inCode(t)
			c.Path = "demo"
			tc.modify(c)
			err := c.Validate()
			list := errorList(t, err)
			if len(list) != 1 {
				t.Fatalf("%d errors, want 1:\n%v", len(list), err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Key != tc.key || e.Line != 0 || e.File != "demo" {
				t.Errorf("error %+v, want key %q, line 0, file demo", e, tc.key)
			}
			if !strings.HasPrefix(e.Error(), "demo: "+tc.key+": ") {
				t.Errorf("message %q", e)
			}
		})
	}
}

func TestValidateCollectsAll(t *testing.T) {
	c := &Config{Peers: []Peer{{}}}
	list := errorList(t, c.Validate())
	got := strings.Join(keysOf(list), " ")
	want := "cluster node identity peers[0].cluster peers[0].node peers[0].mode peers[0]"
	if got != want {
		t.Errorf("keys %q, want %q", got, want)
	}
}

// Validate leaves a parsed config as it is.
func TestValidateParsedUnchanged(t *testing.T) {
	c := mustParse(t, base+"groups: {unreachable_grace: 0s}\nbuffer: {max_age: 1m}\n    \n")
	before := *c
	before.Peers = append([]Peer(nil), c.Peers...)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, *c) {
		t.Errorf("Validate changed the config:\n%+v\n%+v", before, *c)
	}
}
