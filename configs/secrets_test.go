package configs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wandist/wandist/auth"
)

// leak returns the first 8 consecutive characters of secret found in out,
// or "" when none is.
func leak(secret, out string) string {
	for i := 0; i+8 <= len(secret); i++ {
		if w := secret[i : i+8]; strings.Contains(out, w) {
			return w
		}
	}
	return ""
}

// privateKeyPEM writes a fresh private key file in dir and returns its path,
// its text and its base64 body (the secret part).
func privateKeyPEM(t *testing.T, dir string) (path, text, body string) {
	t.Helper()
	path = filepath.Join(dir, "west-1.key")
	if _, err := auth.GenerateKeyFile(path, false); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			body += l
		}
	}
	return path, string(b), body
}

// A private key where a public key belongs — public_key_file pointing at
// the peer's private key file, or the key pasted inline — is named as
// such, and no part of it is in the error.
func TestPrivateKeyWherePublicKeyBelongs(t *testing.T) {
	dir := t.TempDir()
	keyFile, pemText, body := privateKeyPEM(t, dir)
	firstLine := strings.Split(strings.TrimSpace(pemText), "\n")[1]
	base := "cluster: east\nnode: east-1\nidentity: east-1.key\npeers:\n  - cluster: west\n    node: west-1\n    address: west:7101\n"
	for _, c := range []struct{ name, peer, key, want string }{
		{"public_key_file", "    public_key_file: " + filepath.Base(keyFile) + "\n", "peers[0].public_key_file",
			"west-1.key holds a private key; public_key_file must hold the peer's public key"},
		{"public_key", fmt.Sprintf("    public_key: %q\n", pemText), "peers[0].public_key", "a private key where a public key belongs"},
		{"public_key body", "    public_key: " + firstLine + "\n", "peers[0].public_key", "a private key where a public key belongs"},
		{"public_keys", "    public_keys: [" + firstLine + "]\n", "peers[0].public_keys[0]", "a private key where a public key belongs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(base+c.peer), filepath.Join(dir, "east.yaml"))
			list := errorList(t, err)
			if w := leak(body, err.Error()); w != "" {
				t.Fatalf("the error quotes the private key (%q):\n%v", w, err)
			}
			if list[0].Key != c.key || !strings.Contains(list[0].Msg, c.want) || !errors.Is(err, auth.ErrPrivateKey) {
				t.Fatalf("got %v (key %q), want %s: ... %s (errors.Is ErrPrivateKey: %v)", err, list[0].Key, c.key, c.want, errors.Is(err, auth.ErrPrivateKey))
			}
		})
	}
}

// A token where a mapping belongs (a slip of indentation) is not quoted
// back.
func TestMisplacedTokenNotEchoed(t *testing.T) {
	const tok = "Zq7vK2mP9xW4rT8n"
	for _, sec := range []string{"local", "admin"} {
		_, err := Parse([]byte("cluster: e\nnode: e-1\nidentity: k\n"+sec+": "+tok+"\n"), "c.yaml")
		list := errorList(t, err)
		if list[0].Key != sec || strings.Contains(err.Error(), tok[:8]) {
			t.Errorf("%s: %v", sec, err)
		}
	}
}

// A config file holding a token is refused when group or others may read
// it, with the file, its mode and the fix; without tokens its mode is not
// checked.
func TestLoadRefusesReadableConfigWithTokens(t *testing.T) {
	dir := t.TempDir()
	base := "cluster: e\nnode: e-1\nidentity: e.key\n"
	for _, c := range []struct {
		name, text string
		mode       os.FileMode
		refused    string // "" = accepted
	}{
		{"local token 0644", base + "local: {token: s3cret}\n", 0o644, "local.token"},
		{"admin token 0640", base + "admin: {listen: 127.0.0.1:0, token: s3cret}\n", 0o640, "admin.token"},
		{"both 0604", base + "local: {token: a}\nadmin: {listen: 127.0.0.1:0, token: b}\n", 0o604, "local.token and admin.token"},
		{"token 0600", base + "local: {token: s3cret}\n", 0o600, ""},
		{"token 0400", base + "local: {token: s3cret}\n", 0o400, ""},
		{"no token 0644", base, 0o644, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
			if err := os.WriteFile(p, []byte(c.text), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, c.mode)
			_, err := Load(p)
			if c.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			list := errorList(t, err)
			for _, want := range []string{p + ": holds " + c.refused, fmt.Sprintf("mode %#o", c.mode), "chmod 600 " + p} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error lacks %q: %v", want, err)
				}
			}
			if !errors.Is(err, auth.ErrSecretPermissions) || len(list) != 1 || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("got %v", err)
			}
		})
	}
}

// link.max_streams × link.max_frame_size is bounded by
// link.max_link_memory, with an error naming both keys and their values.
func TestMaxLinkMemory(t *testing.T) {
	base := "cluster: e\nnode: e-1\nidentity: k\n"
	if c := mustParse(t, base); c.Link.MaxLinkMemory != 256<<20 {
		t.Fatalf("default max_link_memory %d", c.Link.MaxLinkMemory)
	}
	for _, ok := range []string{
		"link: {max_frame_size: 64MiB, max_streams: 4}\n",                           // 256 MiB
		"link: {max_frame_size: 16MiB, max_streams: 16}\n",                          // 256 MiB
		"link: {max_frame_size: 64MiB, max_streams: 256, max_link_memory: 16GiB}\n", // 16 GiB
	} {
		mustParse(t, base+ok)
	}
	for _, c := range []struct{ text, key, want string }{
		{"link:\n  max_frame_size: 64MiB\n  max_streams: 1024\n", "link.max_frame_size",
			"link.max_streams (1024) × link.max_frame_size (67108864 bytes) = 65536MiB a peer can make this node hold per link, more than link.max_link_memory (256MiB)"},
		{"link:\n  max_frame_size: 32MiB\n", "link.max_frame_size", "link.max_streams (16) × link.max_frame_size (33554432 bytes) = 512MiB"},
		{"link:\n  max_streams: 512\n", "link.max_streams", "link.max_streams (512) × link.max_frame_size (1114112 bytes) = 544MiB"},
		{"link:\n  max_frame_size: 64MiB\n  max_streams: 8\n  max_link_memory: 256MiB\n", "link.max_frame_size", "= 512MiB"},
		{"link:\n  max_link_memory: 17GiB\n", "link.max_link_memory", "must be from 1048576 (1MiB) to 17179869184 (16GiB) bytes"},
		{"link:\n  max_link_memory: 512KiB\n", "link.max_link_memory", "must be from"},
	} {
		_, err := Parse([]byte(base+c.text), "c.yaml")
		list := errorList(t, err)
		if len(list) != 1 || list[0].Key != c.key || list[0].Line != 5 || !strings.Contains(list[0].Msg, c.want) {
			t.Errorf("%q: got %v (key %q, line %d), want %s at line 5: ...%s", c.text, err, list[0].Key, list[0].Line, c.key, c.want)
		}
	}
	// A Config built in code is checked the same way.
	cfg := Default()
	cfg.Cluster, cfg.Node, cfg.Identity = "e", "e-1", "k"
	cfg.Link.MaxStreams, cfg.Link.MaxFrameSize = 1024, MaxFrameSize
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "link.max_link_memory") {
		t.Errorf("Validate: %v", err)
	}
}

// link.quic_connections is 1 by default, 1 to 16, and counts in the
// link's memory bound (each connection has its own streams).
func TestQUICConnections(t *testing.T) {
	base := "cluster: e\nnode: e-1\nidentity: k\n"
	if c := mustParse(t, base); c.Link.QUICConnections != 1 {
		t.Fatalf("default quic_connections %d, want 1", c.Link.QUICConnections)
	}
	if c := mustParse(t, base+"link: {quic_connections: 8}\n"); c.Link.QUICConnections != 8 {
		t.Fatalf("quic_connections %d, want 8", c.Link.QUICConnections)
	}
	for _, c := range []struct{ text, key, want string }{
		{"link:\n  quic_connections: 17\n", "link.quic_connections", "must be from 1 to 16, got 17"},
		{"link:\n  quic_connections: -1\n", "link.quic_connections", "must be from 1 to 16, got -1"},
		{"link:\n  max_frame_size: 16MiB\n  quic_connections: 2\n", "link.max_frame_size",
			"link.max_streams (16) × link.max_frame_size (16777216 bytes) × link.quic_connections (2) = 512MiB a peer can make this node hold per link"},
		{"link:\n  quic_connections: 16\n", "link.quic_connections", "× link.quic_connections (16) = 272MiB"},
	} {
		_, err := Parse([]byte(base+c.text), "c.yaml")
		list := errorList(t, err)
		if len(list) != 1 || list[0].Key != c.key || list[0].Line != 5 || !strings.Contains(list[0].Msg, c.want) {
			t.Errorf("%q: got %v, want %s at line 5: ...%s", c.text, err, c.key, c.want)
		}
	}
}
