package configs

import (
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/auth"
)

// caFiles writes in dir: east-ca.crt, west-ca.crt and east-1.crt (a
// certificate of east's CA for east/east-1).
func caFiles(t *testing.T, dir string) {
	t.Helper()
	now := time.Now()
	for _, cl := range []string{"east", "west"} {
		ca, err := auth.NewCA("", cl, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, cl+"-ca.crt", string(auth.EncodeCertificatesPEM(ca.Cert)))
		if cl == "east" {
			pub, _ := newKey(t)
			crt, err := ca.Issue(auth.PeerID{Cluster: "east", Node: "east-1"}, pub, time.Hour, now)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, "east-1.crt", string(crt))
		}
	}
}

const trustConfig = `
cluster: east
node: east-1
identity: n.key
certificate: east-1.crt
trust:
  domain: wandist
  ca_files: [east-ca.crt]
  revoked_file: revoked.txt
  expiry_warning: 48h
remotes:
  - cluster: west
    seeds: [west-a.example:7201, "10.0.0.2:7201"]
    ca_files: [west-ca.crt]
    buffer: {max_bytes: 8MiB}
peers:
  - cluster: east
    node: east-2
    address: 10.0.0.3:7201
  - cluster: west
    node: west-1
    address: 10.0.0.2:7201
`

func parseIn(t *testing.T, dir, text string) (*Config, error) {
	t.Helper()
	return Parse([]byte(text), filepath.Join(dir, "config.yaml"))
}

func TestParseTrust(t *testing.T) {
	dir := t.TempDir()
	caFiles(t, dir)
	_, k := newKey(t)
	writeFile(t, dir, "revoked.txt", "# revoked\n"+k+"  # east-9\nserial:0a:FF\n\n")
	c, err := parseIn(t, dir, trustConfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.Certificate != filepath.Join(dir, "east-1.crt") || c.Trust.RevokedFile != filepath.Join(dir, "revoked.txt") {
		t.Errorf("paths not absolute: %q %q", c.Certificate, c.Trust.RevokedFile)
	}
	if c.Trust.Domain != "wandist" || c.Trust.ExpiryWarning != 48*time.Hour || len(c.Trust.CAs) != 1 {
		t.Errorf("trust = %+v", c.Trust)
	}
	if len(c.Remotes) != 1 {
		t.Fatalf("remotes = %+v", c.Remotes)
	}
	rc := c.Remotes[0]
	if rc.Cluster != "west" || len(rc.Seeds) != 2 || rc.Transport != TransportQUIC || rc.Mode != ModeBoth ||
		len(rc.CAs) != 1 || rc.CAFiles[0] != filepath.Join(dir, "west-ca.crt") || rc.Line != 12 {
		t.Errorf("remote = %+v", rc)
	}
	if rc.Topology != TopologyMesh || rc.Gateways != DefaultGateways {
		t.Errorf("remote topology %q, gateways %d: want the defaults", rc.Topology, rc.Gateways)
	}
	if rc.Buffer.MaxBytes != 8<<20 || rc.Buffer.MaxMessages != DefaultBufferMaxMessages {
		t.Errorf("remote buffer = %+v", rc.Buffer)
	}
	if len(c.Peers[0].PublicKeys) != 0 || len(c.Peers[1].PublicKeys) != 0 {
		t.Error("peers have keys")
	}
	if a := c.Anchors(); len(a["east"]) != 1 || len(a["west"]) != 1 {
		t.Errorf("anchors = %v", a)
	}
	keys, serials, err := LoadRevoked(c.Trust.RevokedFile)
	if err != nil || len(keys) != 1 || auth.FormatPublicKey(keys[0]) != k || len(serials) != 1 || serials[0].Cmp(big.NewInt(0x0aff)) != 0 {
		t.Fatalf("LoadRevoked: %v %v %v", keys, serials, err)
	}
}

func TestParseTrustDefaults(t *testing.T) {
	c := mustParse(t, minimal)
	if c.Trust.Domain != "wandist" || c.Trust.ExpiryWarning != 720*time.Hour || c.Certificate != "" || c.Remotes != nil {
		t.Fatalf("trust %+v, certificate %q, remotes %v", c.Trust, c.Certificate, c.Remotes)
	}
}

func TestParseTrustErrors(t *testing.T) {
	dir := t.TempDir()
	caFiles(t, dir)
	writeFile(t, dir, "revoked.txt", "")
	writeFile(t, dir, "bad-revoked.txt", "# ok\nserial:xyz\n")
	for _, tc := range []struct {
		name, old, new, key, msg string
	}{
		{"own cluster remote", "  - cluster: west\n    seeds", "  - cluster: east\n    seeds", "remotes[0].cluster", "own cluster"},
		{"no seeds", "    seeds: [west-a.example:7201, \"10.0.0.2:7201\"]\n", "", "remotes[0]", "needs seeds"},
		{"bad seed", "west-a.example:7201", "west-a.example", "remotes[0].seeds[0]", "host:port"},
		{"no remote CA", "    ca_files: [west-ca.crt]\n", "", "remotes[0]", "needs ca_files"},
		{"three CAs", "ca_files: [west-ca.crt]", "ca_files: [west-ca.crt, west-ca.crt, west-ca.crt]", "remotes[0].ca_files", "give 1, or 2"},
		{"CA not found", "ca_files: [west-ca.crt]", "ca_files: [nope.crt]", "remotes[0].ca_files[0]", "nope.crt"},
		{"not a CA", "ca_files: [east-ca.crt]", "ca_files: [east-1.crt]", "trust.ca_files[0]", "not a CA certificate"},
		{"bad transport", "    ca_files: [west-ca.crt]\n", "    ca_files: [west-ca.crt]\n    transport: udp\n", "remotes[0].transport", "must be one of"},
		{"bad topology", "    ca_files: [west-ca.crt]\n", "    ca_files: [west-ca.crt]\n    topology: star\n", "remotes[0].topology", "must be one of"},
		{"too many gateways", "    ca_files: [west-ca.crt]\n", "    ca_files: [west-ca.crt]\n    gateways: 17\n", "remotes[0].gateways", "from 1 to 16, got 17"},
		{"own peer without CA", "  ca_files: [east-ca.crt]\n", "", "peers[0]", "trust.ca_files"},
		{"remote peer without CA", "remotes:\n  - cluster: west", "remotes:\n  - cluster: north", "peers[1]", "remotes[] entry"},
		{"certificate of another node", "node: east-1\n", "node: east-3\n", "certificate", "names east/east-1"},
		{"certificate missing", "certificate: east-1.crt", "certificate: nope.crt", "certificate", "nope.crt"},
		{"bad domain", "domain: wandist", "domain: Not_Valid!", "trust.domain", "trust domain"},
		{"other domain", "domain: wandist", "domain: example.org", "certificate", "trust domain"},
		{"bad expiry warning", "expiry_warning: 48h", "expiry_warning: -1h", "trust.expiry_warning", "greater than 0"},
		{"bad revoked file", "revoked_file: revoked.txt", "revoked_file: bad-revoked.txt", "trust.revoked_file", "bad-revoked.txt:2"},
		{"unknown key", "  expiry_warning: 48h\n", "  expiry_warning: 48h\n  crl: x\n", "trust.crl", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(trustConfig, tc.old, tc.new, 1)
			if text == trustConfig {
				t.Fatalf("%q not in the config", tc.old)
			}
			_, err := parseIn(t, dir, text)
			list := errorList(t, err)
			for _, e := range list {
				if e.Key == tc.key && strings.Contains(e.Error(), tc.msg) {
					if e.Line == 0 {
						t.Errorf("error %v has no line", e)
					}
					return
				}
			}
			t.Fatalf("errors %v; want one at %s containing %q", err, tc.key, tc.msg)
		})
	}
}

func TestLoadRevokedErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ text, want string }{
		"bad key":     {"\n\ned25519:AAAA\n", ":3:"},
		"bad serial":  {"serial:\n", ":1:"},
		"private key": {"-----BEGIN PRIVATE KEY-----\n", "private key"},
		"word":        {"east-1\n", ":1:"},
	} {
		p := writeFile(t, dir, strings.ReplaceAll(name, " ", "_"), tc.text)
		_, _, err := LoadRevoked(p)
		if !errors.Is(err, ErrInvalidRevoked) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrInvalidRevoked naming %s and %q", name, err, p, tc.want)
		}
	}
	if _, _, err := LoadRevoked(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
