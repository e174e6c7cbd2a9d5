package configs

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestGossipSection(t *testing.T) {
	c := mustParse(t, "cluster: eu\nnode: n1\nidentity: n1.key\ngossip:\n  bind: 0.0.0.0:7946\n  advertise: 10.0.0.1:7946\n  seeds: [wandist-gossip.eu.svc.cluster.local:7946, 10.0.0.2:7946]\n  secret_file: gossip.key\n")
	g := c.Gossip
	if g.Bind != "0.0.0.0:7946" || g.Advertise != "10.0.0.1:7946" || len(g.Seeds) != 2 || g.Profile != GossipLAN {
		t.Errorf("gossip = %+v", g)
	}
	if g.SecretFile != filepath.Join(filepath.Dir(c.Path), "gossip.key") {
		t.Errorf("secret_file %q not made absolute beside %s", g.SecretFile, c.Path)
	}
	if c := mustParse(t, "cluster: eu\nnode: n1\nidentity: n1.key\n"); c.Gossip.Bind != "" || c.Gossip.Profile != GossipLAN {
		t.Errorf("no gossip section: %+v", c.Gossip)
	}
}

func TestGossipErrors(t *testing.T) {
	base := "cluster: eu\nnode: n1\nidentity: n1.key\ngossip:\n"
	for _, tc := range []struct{ body, key, want string }{
		{"  bind: :7946\n", "gossip.bind", "needs gossip.secret_file"},
		{"  seeds: [a:1]\n  secret_file: k\n", "gossip.seeds", "needs gossip.bind"},
		{"  bind: :7946\n  secret_file: k\n  profile: moon\n", "gossip.profile", "must be one of lan, wan"},
		{"  bind: :7946\n  secret_file: k\n  seeds: [a:0]\n", "gossip.seeds[0]", "port 0 cannot be dialed"},
		{"  bind: :7946\n  secret_file: k\n  seeds: a:1\n", "gossip.seeds", "must be a list"},
		{"  bind: nope\n  secret_file: k\n", "gossip.bind", "want host:port"},
		{"  bind: :7946\n  secret_file: k\n  advertise: :7946\n", "gossip.advertise", "a host to dial is required"},
		{"  bind: :7946\n  secret_file: k\n  sedes: [a:1]\n", "gossip.sedes", "seeds"},
	} {
		_, err := Parse([]byte(base+tc.body), filepath.Join(t.TempDir(), "c.yaml"))
		list := errorList(t, err)
		if !slices.Contains(keysOf(list), tc.key) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v (keys %v), want %s: %s", tc.body, err, keysOf(list), tc.key, tc.want)
		}
	}
}
