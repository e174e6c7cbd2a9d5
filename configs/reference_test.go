package configs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The full example in reference.md parses once its placeholder keys are
// replaced by real ones.
func TestReferenceExample(t *testing.T) {
	doc, err := os.ReadFile("reference.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "## Full example\n\n```yaml\n")
	if start < 0 {
		t.Fatal("no full example in reference.md")
	}
	text = text[start+len("## Full example\n\n```yaml\n"):]
	text = text[:strings.Index(text, "```")]
	text = regexp.MustCompile(`ed25519:[A-Za-z_]+=`).ReplaceAllStringFunc(text, func(string) string {
		_, k := newKey(t)
		return k
	})
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, s1 := newKey(t)
	writeFile(t, dir, "keys/s1.pub", s1+"\n")
	c, err := Parse([]byte(text), filepath.Join(dir, "east.yaml"))
	if err != nil {
		t.Fatalf("reference example: %v", err)
	}
	if len(c.Peers) != 3 || len(c.Peers[1].PublicKeys) != 2 || c.Peers[2].Mode != ModeAccept {
		t.Errorf("peers = %+v", c.Peers)
	}
	if b := c.Peers[1].Buffer; b.MaxBytes != 8<<20 || b.Overflow != OverflowDropOldest || b.MaxMessages != 1_000_000 {
		t.Errorf("peers[1].buffer = %+v", b)
	}
	if c.Identity != filepath.Join(dir, "keys", "n1.key") || c.Link.KeepaliveTimeout != 5*time.Second {
		t.Errorf("identity %q link %+v", c.Identity, c.Link)
	}
}
