package wandist

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
)

// TestConfigsLoad writes the configs the benchmark uses and loads them with
// the daemon's own config package: a template mistake fails here, not as a
// daemon that will not start in the middle of a run.
func TestConfigsLoad(t *testing.T) {
	dir := t.TempDir()
	key := func(name string) string {
		priv, err := auth.GenerateKeyFile(filepath.Join(dir, name+".key"), false)
		if err != nil {
			t.Fatal(err)
		}
		return auth.FormatPublicKey(priv.Public().(ed25519.PublicKey))
	}
	hub := &node{cluster: "hub", name: "hub-1", dir: dir, socket: filepath.Join(dir, "hub.sock"), quic: 7001, tcp: 7002, admin: 7003, pubKey: key("hub-1")}
	dialer := &node{cluster: "c0", name: "n0", dir: dir, socket: filepath.Join(dir, "n0.sock"), pubKey: key("n0")}
	hubCfg, err := hub.writeConfig([]peer{{Cluster: "c0", Node: "n0", Transport: "tcp", Mode: "accept", Key: dialer.pubKey}}, true)
	if err != nil {
		t.Fatal(err)
	}
	dialCfg, err := dialer.writeConfig([]peer{{Cluster: "hub", Node: "hub-1", Address: "127.0.0.1:7002", Transport: "tcp", Mode: "connect", Key: hub.pubKey}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := configs.Load(hubCfg)
	if err != nil {
		b, _ := os.ReadFile(hubCfg)
		t.Fatalf("%v\n%s", err, b)
	}
	if c.Local.InboxFull != "hold" {
		t.Fatalf("hub config: local.inbox_full %q, want hold", c.Local.InboxFull)
	}
	if c.Listen.QUIC != "127.0.0.1:7001" || c.Admin.Listen != "127.0.0.1:7003" || len(c.Peers) != 1 || c.Buffer.MaxBytes != 2<<30 {
		t.Fatalf("hub config read back wrong: listen %q admin %q peers %d buffer %d", c.Listen.QUIC, c.Admin.Listen, len(c.Peers), c.Buffer.MaxBytes)
	}
	d, err := configs.Load(dialCfg)
	if err != nil {
		b, _ := os.ReadFile(dialCfg)
		t.Fatalf("%v\n%s", err, b)
	}
	if d.Listen.QUIC != "" || d.Listen.TCP != "" || d.Admin.Listen != "" || d.Peers[0].Address != "127.0.0.1:7002" {
		t.Fatalf("dial-only config read back wrong: %+v", d.Listen)
	}
}

func TestParseDropped(t *testing.T) {
	text := "# HELP wandist_messages_dropped_total x\n" +
		"wandist_messages_dropped_total{reason=\"inbox_full\"} 1833\n" +
		"wandist_messages_dropped_total{reason=\"no_mailbox\"} 2\n" +
		"wandist_messages_delivered_total 10\n"
	got := parseDropped(text)
	if len(got) != 2 || got["inbox_full"] != 1833 || got["no_mailbox"] != 2 {
		t.Fatalf("parsed %v", got)
	}
}
