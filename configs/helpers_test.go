package configs

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wandist/wandist/auth"
)

// newKey returns a fresh public key and its text form.
func newKey(t testing.TB) (ed25519.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, auth.FormatPublicKey(pub)
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustParse parses text (with KEY replaced by a fresh key) as the file
// config.yaml in a temporary directory.
func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	_, key := newKey(t)
	c, err := Parse([]byte(strings.ReplaceAll(text, "KEY", key)), filepath.Join(t.TempDir(), "config.yaml"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// errorList asserts err is a non-empty ErrorList and returns it.
func errorList(t *testing.T, err error) ErrorList {
	t.Helper()
	if err == nil {
		t.Fatal("got no error")
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %T %q is not an ErrorList", err, err)
	}
	if len(list) == 0 {
		t.Fatal("empty ErrorList")
	}
	return list
}

func keysOf(list ErrorList) []string {
	var ks []string
	for _, e := range list {
		ks = append(ks, e.Key)
	}
	return ks
}
