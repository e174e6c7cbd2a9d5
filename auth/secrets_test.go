package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

// pemBody returns the base64 lines of a PEM file, joined: the secret part.
func pemBody(pemText string) string {
	var body []string
	for _, l := range strings.Split(pemText, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			body = append(body, l)
		}
	}
	return strings.Join(body, "\n")
}

// A private key, or any other text, where a public key belongs: the error
// says what is wrong without quoting the text. A private key is named as
// such (ErrPrivateKey).
func TestParsePublicKeyNeverEchoes(t *testing.T) {
	path := keyPath(t)
	key, err := GenerateKeyFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	pemText, _ := os.ReadFile(path)
	body := pemBody(string(pemText))
	random := make([]byte, 40)
	rand.Read(random)
	noise := base64.StdEncoding.EncodeToString(random)
	for _, c := range []struct {
		name, in, secret string
		private          bool
	}{
		{"the PEM file", string(pemText), body, true},
		{"its base64 body", body, body, true},
		{"its first line", strings.Split(body, "\n")[0], body, true},
		{"raw private key", PublicKeyPrefix + base64.StdEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString(key), true},
		{"no prefix", noise, noise, false},
		{"bad base64", PublicKeyPrefix + noise + "*", noise, false},
		{"wrong length", PublicKeyPrefix + noise, noise, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePublicKey(c.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if w := leak(c.secret, err.Error()); w != "" {
				t.Errorf("the error quotes the input (%q): %v", w, err)
			}
			if got := errors.Is(err, ErrPrivateKey); got != c.private {
				t.Errorf("errors.Is(err, ErrPrivateKey) = %v, want %v: %v", got, c.private, err)
			}
			if !c.private && !errors.Is(err, ErrInvalidPublicKey) {
				t.Errorf("not ErrInvalidPublicKey: %v", err)
			}
		})
	}
}

// Key files and secret files that cannot be used: the errors name the file
// and never quote what it holds.
func TestKeyAndSecretFileErrorsNeverEcho(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	secret := base64.StdEncoding.EncodeToString(priv)
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	broken := "-----BEGIN PRIVATE KEY-----\n" + secret + "\n-----END PRIVATE KEY-----\n"
	for name, load := range map[string]func() error{
		"key: not a PKCS#8 key": func() error { _, err := LoadKeyFile(write("a.key", broken, 0o600)); return err },
		"key: no PEM block":     func() error { _, err := LoadKeyFile(write("b.key", secret+"\n", 0o600)); return err },
		"key: open mode":        func() error { _, err := LoadKeyFile(write("c.key", broken, 0o644)); return err },
		"key: trailing data":    func() error { _, err := LoadKeyFile(write("d.key", broken+secret, 0o600)); return err },
		"secret: open mode":     func() error { _, err := ReadSecretFile(write("s1", secret, 0o640), 1<<10); return err },
		"secret: too large":     func() error { _, err := ReadSecretFile(write("s2", secret, 0o600), 16); return err },
	} {
		err := load()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if w := leak(secret, err.Error()); w != "" {
			t.Errorf("%s: the error quotes the file (%q): %v", name, w, err)
		}
	}
}

// A secret file group or others may read is refused, naming the file, its
// mode and the fix; a 0600 one is read.
func TestReadSecretFileMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "spool.secret")
	if err := os.WriteFile(p, []byte("0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadSecretFile(p, 1<<10); err != nil || string(b) != "0123456789abcdef" {
		t.Fatalf("0600: %q %v", b, err)
	}
	for _, m := range []os.FileMode{0o640, 0o604, 0o660} {
		os.Chmod(p, m)
		_, err := ReadSecretFile(p, 1<<10)
		if !errors.Is(err, ErrSecretPermissions) || !strings.Contains(err.Error(), "chmod 600 "+p) || !strings.Contains(err.Error(), fmt.Sprintf("mode %#o", m)) {
			t.Errorf("mode %#o: %v", m, err)
		}
	}
	if _, err := ReadSecretFile(filepath.Dir(p), 1<<10); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}
