package configs

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// base is a valid config; line numbers below count from its first line.
//
//	1 cluster: east
//	2 node: n1
//	3 identity: n1.key
//	4 listen:
//	5   quic: 127.0.0.1:7101
//	6 peers:
//	7   - cluster: west
//	8     node: w1
//	9     address: 127.0.0.1:7201
//	10    public_key: KEY
const base = `cluster: east
node: n1
identity: n1.key
listen:
  quic: 127.0.0.1:7101
peers:
  - cluster: west
    node: w1
    address: 127.0.0.1:7201
    public_key: KEY
`

// One error per case: its key, line, and a word of its message.
var errorCases = []struct {
	name string
	text string
	key  string
	line int
	msg  string
}{
	{"unknown top key", base + "clustr: x\n", "clustr", 11, `did you mean "cluster"`},
	{"unknown nested key", strings.Replace(base, "  quic:", "  quick:", 1), "listen.quick", 5, `did you mean "quic"`},
	{"unknown peer key", base + "  - cluster: west\n    node: w2\n    adress: w:1\n    public_key: KEY\n",
		"peers[1].adress", 13, `did you mean "address"`},
	{"unknown key no suggestion", base + "colour: red\n", "colour", 11, "unknown key"},
	{"camel case key", base + "link: {keepaliveInterval: 1s}\n", "link.keepaliveInterval", 11, `"keepalive_interval"`},
	{"duplicate key", base + "node: n2\n", "node", 11, "first at line 2"},
	{"duplicate peer key", base + "    node: w9\n", "peers[0].node", 11, "duplicate key"},
	{"merge key", base + "log: {<<: {level: info}}\n", "log.<<", 11, "merge"},
	{"section not mapping", base + "link: fast\n", "link", 11, "must be a mapping"},
	{"string is a list", strings.Replace(base, "node: n1", "node: [n1]", 1), "node", 2, "must be a string"},
	{"duration is a list", base + "link:\n  keepalive_interval: [1, 2]\n", "link.keepalive_interval", 12, "duration"},
	{"duration without unit", base + "groups:\n  unreachable_grace: 30\n", "groups.unreachable_grace", 12, "bad duration"},
	{"bad duration", base + "link: {reconnect_min: soon}\n", "link.reconnect_min", 11, "bad duration"},
	{"bad size", base + "buffer:\n  max_bytes: 64XB\n", "buffer.max_bytes", 12, "unknown unit"},
	{"bad frame size", base + "link: {max_frame_size: big}\n", "link.max_frame_size", 11, "bad size"},
	{"bad integer", base + "buffer: {max_messages: lots}\n", "buffer.max_messages", 11, "integer"},
	{"listen missing port", strings.Replace(base, "quic: 127.0.0.1:7101", "quic: 127.0.0.1", 1), "listen.quic", 5, "missing port"},
	{"listen bad port", base + "admin: {listen: 'localhost:http'}\n", "admin.listen", 11, "port"},
	{"peer port out of range", strings.Replace(base, "127.0.0.1:7201", "127.0.0.1:99999", 1), "peers[0].address", 9, "port"},
	{"peer address without host", strings.Replace(base, "127.0.0.1:7201", ":7201", 1), "peers[0].address", 9, "host"},
	{"bad log level", base + "log:\n  format: json\n  level: verbose\n", "log.level", 13, "must be one of"},
	{"bad transport", base + "    transport: udp\n", "peers[0].transport", 11, "quic, tcp"},
	{"bad mode", base + "    mode: bot\n", "peers[0].mode", 11, `did you mean "both"`},
	{"bad overflow", base + "buffer: {overflow: drop}\n", "buffer.overflow", 11, "reject, drop-oldest"},
	{"bad peer overflow", base + "    buffer:\n      overflow: oldest\n", "peers[0].buffer.overflow", 12, "must be one of"},
	{"bad public key", strings.Replace(base, "public_key: KEY", "public_key: ed25519:AAAA", 1), "peers[0].public_key", 10, "bad public key"},
	{"public key without prefix", strings.Replace(base, "public_key: KEY", "public_keys:\n      - KEY\n      - AAAA", 1),
		"peers[0].public_keys[1]", 12, "bad public key"},
	{"public key file bad line", strings.Replace(base, "public_key: KEY", "public_key_file: bad.pub", 1),
		"peers[0].public_key_file", 10, "bad.pub:2: bad public key"},
	{"public key file empty", strings.Replace(base, "public_key: KEY", "public_key_file: empty.pub", 1),
		"peers[0].public_key_file", 10, "no public key"},
	{"no public key", strings.Replace(base, "    public_key: KEY\n", "", 1), "peers[0]", 7, "no public key"},
	{"missing cluster", strings.Replace(base, "cluster: east\n", "", 1), "cluster", 1, "required"},
	{"missing identity", strings.Replace(base, "identity: n1.key\n", "", 1), "identity", 1, "required"},
	{"missing peer node", strings.Replace(base, "    node: w1\n", "", 1), "peers[0].node", 7, "required"},
	{"bad name", strings.Replace(base, "node: n1", "node: N1!", 1), "node", 2, "bad name"},
	{"name too long", strings.Replace(base, "node: w1", "node: "+strings.Repeat("w", 64), 1), "peers[0].node", 8, "bad name"},
	{"duplicate peer", base + "  - cluster: west\n    node: w1\n    public_key: KEY\n", "peers[1]", 11, "line 7"},
	{"peer is self", strings.Replace(strings.Replace(base, "cluster: west", "cluster: east", 1), "node: w1", "node: n1", 1), "peers[0]", 7, "this node itself"},
	{"connect without address", strings.Replace(base, "    address: 127.0.0.1:7201\n", "    mode: connect\n", 1), "peers[0].mode", 9, "needs an address"},
	{"accept without listener", strings.Replace(strings.Replace(base, "listen:\n  quic: 127.0.0.1:7101\n", "", 1), "    address: 127.0.0.1:7201\n", "", 1),
		"peers[0].mode", 5, "listens on nothing"},
	{"keepalive timeout not above interval", base + "link:\n  keepalive_interval: 5s\n  keepalive_timeout: 5s\n", "link.keepalive_timeout", 13, "longer than"},
	{"keepalive timeout too long", base + "link: {keepalive_timeout: 11m}\n", "link.keepalive_timeout", 11, "at most"},
	{"reconnect max below min", base + "link:\n  reconnect_min: 2s\n  reconnect_max: 1s\n", "link.reconnect_max", 13, "at least"},
	{"frame size too small", base + "link: {max_frame_size: 1KiB}\n", "link.max_frame_size", 11, "must be from"},
	{"frame size too large", base + "link: {max_frame_size: 65MiB}\n", "link.max_frame_size", 11, "must be from"},
	{"zero max bytes", base + "buffer: {max_bytes: 0}\n", "buffer.max_bytes", 11, "greater than 0"},
	{"negative max age", base + "buffer: {max_age: -1s}\n", "buffer.max_age", 11, "negative"},
	{"negative grace", base + "groups: {unreachable_grace: -1s}\n", "groups.unreachable_grace", 11, "negative"},
	{"zero members per peer", base + "groups: {max_members_per_peer: 0}\n", "groups.max_members_per_peer", 11, "must be from 1"},
	{"too many groups per peer", base + "groups: {max_groups_per_peer: 20000000}\n", "groups.max_groups_per_peer", 11, "must be from 1"},
	{"negative partitions per peer", base + "groups: {max_partitions_per_peer: -1}\n", "groups.max_partitions_per_peer", 11, "must be from 1"},
	{"snapshot budget below a frame", base + "groups: {max_snapshot_bytes: 64KiB}\n", "groups.max_snapshot_bytes", 11, "at least link.max_frame_size"},
	{"snapshot timeout too short", base + "groups: {snapshot_timeout: 10ms}\n", "groups.snapshot_timeout", 11, "must be from"},
	{"imports not a list", base + "imports: {groups: [a]}\n", "imports", 11, "must be a list"},
	{"import without from", base + "imports:\n  - {groups: [a]}\n", "imports[0]", 12, "needs from"},
	{"socket too long", base + "local: {socket: /" + strings.Repeat("s", 110) + "}\n", "local.socket", 11, "longer than"},
	{"duplicate section", base + "listen: {tcp: '127.0.0.1:7102'}\n", "listen", 11, "duplicate key"},
	{"admin same as tcp", strings.Replace(base, "  quic: 127.0.0.1:7101\n", "  quic: 127.0.0.1:7101\n  tcp: 127.0.0.1:7102\n", 1) +
		"admin: {listen: '127.0.0.1:7102'}\n", "admin.listen", 12, "same address as listen.tcp"},
	{"peers not a list", strings.Replace(base, "peers:\n", "peers: 3\n", 1)[:strings.Index(base, "peers:")+9], "peers", 6, "must be a list"},
	{"peer not a mapping", base + "  - west/w2\n", "peers[1]", 11, "must be a mapping"},
	{"yaml syntax", base + "log: [info\n", "", 11, "bad YAML"},
	{"yaml missing colon", base + "log\nnode: x\n", "", 11, "bad YAML"},
	// The YAML parser names the start of the list it was in.
	{"yaml bad list", base + "  y: 2\n", "", 7, "bad YAML"},
	{"yaml bad quoting", base + "log: \"x\" y\n", "", 11, "bad YAML"},
	{"yaml bad indentation", "cluster: east\n node: x\n", "", 2, "bad YAML"},
	{"top level not mapping", "- cluster: east\n", "", 1, "top level must be a mapping"},
	{"two documents", base + "---\ncluster: west\n", "", 11, "more than one YAML document"},
	{"key not a string", base + "[a]: 1\n", "", 11, "keys must be plain strings"},
}

func TestErrorCases(t *testing.T) {
	dir := t.TempDir()
	_, key := newKey(t)
	writeFile(t, dir, "bad.pub", key+"\nnot-a-key\n")
	writeFile(t, dir, "empty.pub", "# nothing here\n\n")
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.ReplaceAll(tc.text, "KEY", key)
			c, err := Parse([]byte(text), filepath.Join(dir, "c.yaml"))
			if c != nil {
				t.Errorf("got a Config with the error")
			}
			list := errorList(t, err)
			if len(list) != 1 {
				t.Fatalf("%d errors, want 1:\n%v", len(list), err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatal("errors.As(*Error) failed")
			}
			if e.Key != tc.key || e.Line != tc.line {
				t.Errorf("key %q line %d, want key %q line %d: %v", e.Key, e.Line, tc.key, tc.line, e)
			}
			if !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("message %q lacks %q", e.Msg, tc.msg)
			}
			if e.File != filepath.Join(dir, "c.yaml") {
				t.Errorf("file = %q", e.File)
			}
		})
	}
}

func TestMissingKeyFileWrapsOSError(t *testing.T) {
	text := strings.Replace(base, "public_key: KEY", "public_key_file: nope.pub", 1)
	_, err := Parse([]byte(text), filepath.Join(t.TempDir(), "c.yaml"))
	list := errorList(t, err)
	if len(list) != 1 || list[0].Key != "peers[0].public_key_file" || list[0].Line != 10 {
		t.Fatalf("errors = %v", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%v does not wrap fs.ErrNotExist", err)
	}
}

func TestEmptyFile(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n", "~\n", "---\n"} {
		_, err := Parse([]byte(text), "c.yaml")
		list := errorList(t, err)
		if got := strings.Join(keysOf(list), ","); got != "cluster,node,identity" {
			t.Errorf("%q: keys %s, want cluster,node,identity", text, got)
		}
	}
}

func TestMultipleErrorsCollected(t *testing.T) {
	text := `cluster: East
node: n1
identity: n1.key
lisen:
  quic: 127.0.0.1:7101
link:
  keepalive_interval: 2x
  max_frame_size: 12
peers:
  - cluster: west
    node: w1
    address: nowhere
    public_key: ed25519:xyz
  - cluster: west
    node: w1
    transport: sctp
    public_key: KEY
log: {level: loud}
node: n2
`
	_, key := newKey(t)
	_, err := Parse([]byte(strings.ReplaceAll(text, "KEY", key)), filepath.Join(t.TempDir(), "c.yaml"))
	list := errorList(t, err)
	type kl struct {
		key  string
		line int
	}
	want := []kl{
		{"cluster", 1},
		{"lisen", 4},
		{"link.keepalive_interval", 7},
		{"link.max_frame_size", 8},
		{"peers[0].address", 12},
		{"peers[0].public_key", 13},
		{"peers[1]", 14},
		{"peers[1].transport", 16},
		{"peers[1].mode", 14}, // accept-only: "lisen" left this node without listeners
		{"log.level", 18},
		{"node", 19},
	}
	var got []kl
	for _, e := range list {
		got = append(got, kl{e.Key, e.Line})
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), err)
	}
	seen := map[kl]bool{}
	for _, g := range got {
		seen[g] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("missing error %+v in:\n%v", w, err)
		}
	}
	for i := 1; i < len(list); i++ {
		if list[i].Line < list[i-1].Line {
			t.Errorf("errors not in line order:\n%v", err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(list) {
		t.Errorf("Error() has %d lines, want %d", n, len(list))
	}
}

// Two failed checks on one key are both reported.
func TestSameKeyTwoProblems(t *testing.T) {
	text := base + "  - cluster: west\n    node: w1\n"
	_, key := newKey(t)
	_, err := Parse([]byte(strings.ReplaceAll(text, "KEY", key)), "c.yaml")
	list := errorList(t, err)
	if len(list) != 2 {
		t.Fatalf("%d errors, want 2:\n%v", len(list), err)
	}
	for _, e := range list {
		if e.Key != "peers[1]" || e.Line != 11 {
			t.Errorf("error %+v, want peers[1] on line 11", e)
		}
	}
}
