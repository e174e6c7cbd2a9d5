package configs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const minimal = `
cluster: east
node: n1
identity: n1.key
peers:
  - cluster: west
    node: w1
    address: west.example:7201
    public_key: KEY
`

func TestDefault(t *testing.T) {
	d := Default()
	want := &Config{
		Link: Link{
			KeepaliveInterval:  time.Second,
			KeepaliveTimeout:   5 * time.Second,
			HandshakeTimeout:   5 * time.Second,
			ReconnectMin:       100 * time.Millisecond,
			ReconnectMax:       10 * time.Second,
			MaxFrameSize:       1114112,
			MaxStreams:         16,
			HandshakeRate:      20,
			HandshakeBurst:     40,
			HandshakeRateTotal: 20,
			HelloTimeout:       2 * time.Second,
			MaxLinkMemory:      256 << 20,
			QUICConnections:    1,
		},
		Groups: Groups{UnreachableGrace: 30 * time.Second, RejoinGrace: 10 * time.Second, MaxMembersPerPeer: 100_000, MaxGroupsPerPeer: 10_000,
			MaxPartitionsPerPeer: 1_000_000, MaxSnapshotBytes: 64 << 20, SnapshotTimeout: 2 * time.Minute, MembershipRate: 256 << 10},
		Buffer: Buffer{MaxBytes: 64 << 20, MaxMessages: 1_000_000, Overflow: "reject"},
		Spool:  Spool{MaxBytes: 1 << 30},
		Local:  Local{MaxClients: 1024, HelloTimeout: 2 * time.Second, ClientBuffer: 64 << 20, InboxFull: "park", HoldBytes: 64 << 20, HoldMessages: 100_000},
		Log:    Log{Level: "info", Format: "text"},
		Trust:  Trust{Domain: "wandist", ExpiryWarning: 720 * time.Hour},
		Gossip: Gossip{Profile: "lan"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Default() = %+v\nwant %+v", d, want)
	}
}

func TestParseDefaultsApplied(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "/run/wandist-test")
	c := mustParse(t, minimal)
	d := Default()
	if c.Link != d.Link || c.Groups != d.Groups || c.Buffer != d.Buffer || c.Log != d.Log {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.Listen != (Listen{}) || c.Admin.Listen != "" || c.Local.Token != "" {
		t.Errorf("listen %+v admin %q token %q, want all empty", c.Listen, c.Admin.Listen, c.Local.Token)
	}
	if c.Local.Socket != "/run/wandist-test/wandist.sock" {
		t.Errorf("socket = %q, want wandist.sock in $RUNTIME_DIRECTORY", c.Local.Socket)
	}
	p := c.Peers[0]
	if p.Transport != TransportQUIC || p.Mode != ModeBoth || p.Buffer != d.Buffer || p.Line != 6 {
		t.Errorf("peer = %+v", p)
	}
	if !filepath.IsAbs(c.Identity) || filepath.Base(c.Identity) != "n1.key" {
		t.Errorf("identity = %q, want absolute", c.Identity)
	}
}

func TestParseAllKeys(t *testing.T) {
	c := mustParse(t, `
cluster: east
node: n1
identity: /etc/wandist/n1.key
listen: {quic: "[::1]:7101", tcp: ":7102"}
local: {socket: run/n1.sock, token: s3cret}
admin: {listen: "localhost:0"}
link:
  keepalive_interval: 250ms
  keepalive_timeout: 2s
  handshake_timeout: 3s
  reconnect_min: 50ms
  reconnect_max: 1m
  max_frame_size: 2MiB
groups: {unreachable_grace: 0s}
log: {level: debug, format: json}
peers:
  - cluster: west
    node: w1
    public_key: KEY
    buffer: {max_messages: 10, max_age: 0s}
  - {cluster: west, node: w2, address: "10.0.0.2:7202", transport: tcp, mode: connect, public_key: KEY}
buffer:
  max_bytes: 512KiB
  max_messages: 1000
  max_age: 1h
  overflow: drop-oldest
`)
	if c.Identity != "/etc/wandist/n1.key" {
		t.Errorf("identity = %q", c.Identity)
	}
	if c.Listen.QUIC != "[::1]:7101" || c.Listen.TCP != ":7102" || c.Admin.Listen != "localhost:0" {
		t.Errorf("listen %+v admin %q", c.Listen, c.Admin.Listen)
	}
	wantSock := filepath.Join(filepath.Dir(c.Path), "run", "n1.sock")
	if c.Local.Socket != wantSock || c.Local.Token != "s3cret" {
		t.Errorf("local = %+v, want socket %q", c.Local, wantSock)
	}
	wantLink := Link{250 * time.Millisecond, 2 * time.Second, 3 * time.Second, 50 * time.Millisecond, time.Minute, 2 << 20, 16, 20, 40, 20, 2 * time.Second, 256 << 20, 1}
	if c.Link != wantLink {
		t.Errorf("link = %+v", c.Link)
	}
	if c.Groups.UnreachableGrace != 0 || c.Log != (Log{"debug", "json"}) {
		t.Errorf("groups %+v log %+v", c.Groups, c.Log)
	}
	top := Buffer{MaxBytes: 512 << 10, MaxMessages: 1000, MaxAge: time.Hour, Overflow: OverflowDropOldest}
	if c.Buffer != top {
		t.Errorf("buffer = %+v", c.Buffer)
	}
	// The peer's buffer overrides single fields of the top-level buffer,
	// even though the top-level buffer comes later in the file.
	if want := (Buffer{MaxBytes: 512 << 10, MaxMessages: 10, MaxAge: 0, Overflow: OverflowDropOldest}); c.Peers[0].Buffer != want {
		t.Errorf("peers[0].buffer = %+v, want %+v", c.Peers[0].Buffer, want)
	}
	if c.Peers[0].Mode != ModeAccept || c.Peers[1].Buffer != top {
		t.Errorf("peers = %+v", c.Peers)
	}
	if p := c.Peers[1]; p.Transport != TransportTCP || p.Mode != ModeConnect || p.Address != "10.0.0.2:7202" {
		t.Errorf("peers[1] = %+v", p)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate on a parsed config: %v", err)
	}
}

func TestParsePublicKeySources(t *testing.T) {
	dir := t.TempDir()
	k1, t1 := newKey(t)
	k2, t2 := newKey(t)
	k3, t3 := newKey(t)
	writeFile(t, dir, "peer.pub", "# keys of w1\n\n"+t2+"  w1 old\n   \n"+t3+"\n"+t1+"\n")
	text := `
cluster: east
node: n1
identity: n1.key
listen: {quic: "127.0.0.1:0"}
peers:
  - cluster: west
    node: w1
    public_key: ` + t1 + `
    public_keys: [` + t2 + `, ` + t1 + `]
    public_key_file: peer.pub
`
	c, err := Parse([]byte(text), filepath.Join(dir, "east.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Peers[0].PublicKeys
	if len(got) != 3 || !got[0].Equal(k1) || !got[1].Equal(k2) || !got[2].Equal(k3) {
		t.Errorf("keys = %v, want k1 k2 k3 once each", got)
	}
}

func TestParseRelativeToWorkingDir(t *testing.T) {
	_, key := newKey(t)
	c, err := Parse([]byte(strings.ReplaceAll(minimal, "KEY", key)), "")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if c.Identity != filepath.Join(wd, "n1.key") || c.Path != "" {
		t.Errorf("identity = %q path %q", c.Identity, c.Path)
	}
}

func TestParseNullSectionsAndAliases(t *testing.T) {
	c := mustParse(t, `
cluster: east
node: n1
identity: n1.key
listen:
  # quic: 127.0.0.1:7101
link:
buffer: &buf
  max_messages: 5
peers:
  - cluster: west
    node: w1
    address: w:1
    public_key: KEY
    buffer: *buf
`)
	if c.Listen != (Listen{}) || c.Link != Default().Link {
		t.Errorf("listen %+v link %+v", c.Listen, c.Link)
	}
	if c.Peers[0].Buffer.MaxMessages != 5 || c.Buffer.MaxMessages != 5 {
		t.Errorf("alias not followed: %+v", c.Peers[0].Buffer)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load error %v does not wrap fs.ErrNotExist", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != path {
		t.Errorf("no *fs.PathError for %q in %v", path, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != path || e.Line != 0 {
		t.Errorf("*Error = %+v", e)
	}
}

func TestLoadReportsFileName(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "east-1.yaml", "cluster: east\nnode: n1\nidentity: k\nlog: {level: loud}\n")
	_, err := Load(path)
	list := errorList(t, err)
	if len(list) != 1 || list[0].File != path || list[0].Line != 4 || list[0].Key != "log.level" {
		t.Fatalf("errors = %v", err)
	}
	if want := path + ":4: log.level: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q does not start with %q", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "east-1.yaml", Line: 12, Key: "peers[0].public_key", Msg: "bad public key: x"}, "east-1.yaml:12: peers[0].public_key: bad public key: x"},
		{Error{File: "a.yaml", Msg: "cannot read"}, "a.yaml: cannot read"},
		{Error{Line: 3, Key: "node", Msg: "required"}, "line 3: node: required"},
		{Error{Key: "node", Msg: "required"}, "node: required"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	list := ErrorList{{Key: "a", Msg: "x"}, {Key: "b", Msg: "y"}}
	if got := list.Error(); got != "a: x\nb: y" {
		t.Errorf("list = %q", got)
	}
}

func TestSpoolSection(t *testing.T) {
	c, err := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nspool:\n  dir: spool\n  max_bytes: 10MiB\n  secret_file: s.secret\n"), "/etc/wandist/e-1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Spool.Dir != "/etc/wandist/spool" || c.Spool.MaxBytes != 10<<20 || c.Spool.SecretFile != "/etc/wandist/s.secret" {
		t.Fatalf("spool: %+v", c.Spool)
	}
	_, err = Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nspool:\n  dri: x\n"), "c.yaml")
	var el ErrorList
	if !errors.As(err, &el) || el[0].Line != 5 || el[0].Key != "spool.dri" {
		t.Fatalf("unknown spool key: %v", err)
	}
}

func TestExports(t *testing.T) {
	c, err := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nexports:\n  - { groups: [\"kv-*\", jobs], to: [west] }\n  - { groups: [\"*\"], to: [\"south*\"] }\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		group, cluster string
		want           bool
	}{
		{"kv-1", "west", true}, {"jobs", "west", true}, {"secret", "west", false},
		{"secret", "south-2", true}, {"secret", "e", true}, {"kv-1", "north", false},
	} {
		if got := c.Exported(tc.group, tc.cluster); got != tc.want {
			t.Errorf("Exported(%q, %q) = %v, want %v", tc.group, tc.cluster, got, tc.want)
		}
	}
	none, _ := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\n"), "c.yaml")
	if !none.Exported("anything", "west") {
		t.Error("without exports every group must be exported")
	}
	_, err = Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nexports:\n  - { groups: [\"[\"], to: [west] }\n  - { to: [west] }\n"), "c.yaml")
	var el ErrorList
	if !errors.As(err, &el) || len(el) < 2 || el[0].Line != 5 || el[len(el)-1].Line != 6 {
		t.Fatalf("bad exports: %v", err)
	}
}

func TestImports(t *testing.T) {
	// Without an imports key, a cluster may add members to what is exported to it.
	c, err := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nexports:\n  - { groups: [\"kv-*\"], to: [west] }\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		group, cluster string
		want           bool
	}{
		{"kv-1", "west", true}, {"secret", "west", false}, {"kv-1", "north", false}, {"secret", "e", true},
	} {
		if got := c.Imported(tc.group, tc.cluster); got != tc.want {
			t.Errorf("default imports: Imported(%q, %q) = %v, want %v", tc.group, tc.cluster, got, tc.want)
		}
	}
	none, _ := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\n"), "c.yaml")
	if !none.Imported("anything", "west") {
		t.Error("without exports and imports every group must be imported")
	}
	// Explicit rules replace the default.
	c, err = Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nimports:\n  - { groups: [jobs], from: [\"south*\"] }\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Imported("jobs", "south-2") || c.Imported("kv", "south-2") || c.Imported("jobs", "west") || !c.Imported("kv", "e") {
		t.Errorf("imports rules: %+v", c.Imports)
	}
	empty, _ := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nimports: []\n"), "c.yaml")
	if empty.Imports == nil || empty.Imported("kv", "west") {
		t.Error("an empty imports key must import nothing from other clusters")
	}
	_, err = Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nimports:\n  - { groups: [\"[\"], from: [west] }\n  - { from: [west] }\n"), "c.yaml")
	var el ErrorList
	if !errors.As(err, &el) || len(el) < 2 || el[0].Line != 5 || el[len(el)-1].Line != 6 {
		t.Fatalf("bad imports: %v", err)
	}
}

func TestMembershipBudgetKeys(t *testing.T) {
	c, err := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\ngroups:\n  max_members_per_peer: 10\n  max_groups_per_peer: 2\n"+
		"  max_partitions_per_peer: 64\n  max_snapshot_bytes: 2MiB\n  snapshot_timeout: 3s\n  membership_rate: 256KiB\n  rejoin_grace: 0s\n"), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Groups{UnreachableGrace: DefaultUnreachableGrace, MaxMembersPerPeer: 10, MaxGroupsPerPeer: 2, MaxPartitionsPerPeer: 64,
		MaxSnapshotBytes: 2 << 20, SnapshotTimeout: 3 * time.Second, MembershipRate: 256 << 10}
	if c.Groups != want {
		t.Errorf("groups = %+v, want %+v", c.Groups, want)
	}
}

func TestAdminOffLoopbackNeedsToken(t *testing.T) {
	_, err := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nadmin: { listen: 0.0.0.0:7103 }\n"), "c.yaml")
	var el ErrorList
	if !errors.As(err, &el) || el[0].Key != "admin.listen" || el[0].Line != 4 {
		t.Fatalf("admin on all interfaces without a token: %v", err)
	}
	c, err := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nadmin: { listen: 0.0.0.0:7103, token: s3cret }\n"), "c.yaml")
	if err != nil || c.Admin.Token != "s3cret" {
		t.Fatalf("with a token: %v", err)
	}
	for _, a := range []string{"127.0.0.1:7103", "[::1]:7103", "localhost:7103"} {
		if _, err := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nadmin: { listen: \""+a+"\" }\n"), "c.yaml"); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
}

func TestAdminPprof(t *testing.T) {
	c, err := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nadmin: { listen: 127.0.0.1:7103, token: s3cret, pprof: true }\n"), "c.yaml")
	if err != nil || !c.Admin.Pprof {
		t.Fatalf("pprof: true: %v %+v", err, c.Admin)
	}
	// Profiles show stacks and heap contents: not without a token.
	_, err = Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nadmin:\n  listen: 127.0.0.1:7103\n  pprof: true\n"), "c.yaml")
	var el ErrorList
	if !errors.As(err, &el) || len(el) != 1 || el[0].Key != "admin.pprof" || el[0].Line != 6 || !strings.Contains(el[0].Msg, "needs admin.token") {
		t.Errorf("pprof without a token: %v", err)
	}
	for _, v := range []string{`"yes"`, "1", "on", "[true]"} {
		_, err := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\nadmin:\n  listen: 127.0.0.1:7103\n  token: s3cret\n  pprof: "+v+"\n"), "c.yaml")
		var el ErrorList
		if !errors.As(err, &el) || el[0].Key != "admin.pprof" || el[0].Line != 7 || !strings.Contains(el[0].Msg, "true or false") {
			t.Errorf("pprof: %s: %v", v, err)
		}
	}
}
