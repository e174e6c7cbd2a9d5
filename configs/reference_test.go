package configs

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// Every key the parser knows is documented in reference.md, in the section
// of its mapping: the top-level table lists every top-level key, and each
// section names each of its keys in backquotes. A key added to the parser
// without a line here fails this test.
func TestReferenceListsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("reference.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := []struct {
		heading string
		keys    []string
	}{
		{"Top level", rootKeys},
		{"`listen`", listenKeys},
		{"`local`", localKeys},
		{"`admin`", adminKeys},
		{"`link`", linkKeys},
		{"`groups`", groupsKeys},
		// The items of exports and imports (exports.go): {groups, to}
		// and {groups, from}.
		{"`exports` and `imports`", []string{"exports", "imports", "groups", "to", "from"}},
		{"`buffer`", bufferKeys},
		{"`spool`", spoolKeys},
		{"`gossip`", gossipKeys},
		{"`log`", logKeys},
		{"`peers`", peerKeys},
		{"`trust`", trustKeys},
		{"`remotes`", remoteKeys},
	}
	// Every top-level key that is a mapping or a list has its section
	// above, so that the list cannot miss one the parser has.
	for _, k := range rootKeys {
		if slices.Contains([]string{"cluster", "node", "identity", "certificate"}, k) {
			continue
		}
		if !slices.ContainsFunc(sections, func(s struct {
			heading string
			keys    []string
		}) bool {
			return strings.Contains(s.heading, "`"+k+"`")
		}) {
			t.Errorf("top-level key %q has no section in this test's list", k)
		}
	}
	for _, s := range sections {
		text, ok := referenceSection(string(doc), s.heading)
		if !ok {
			t.Errorf("reference.md has no section %q", "## "+s.heading)
			continue
		}
		for _, k := range s.keys {
			if s.heading == "Top level" {
				if !strings.Contains(text, "| `"+k+"`") {
					t.Errorf("reference.md: the top-level table has no row for `%s`", k)
				}
				continue
			}
			if !strings.Contains(text, "`"+k+"`") {
				t.Errorf("reference.md: section %q does not name `%s`", s.heading, k)
			}
		}
	}
}

// referenceSection returns the text under "## heading" up to the next
// "## " heading.
func referenceSection(doc, heading string) (string, bool) {
	i := strings.Index(doc, "\n## "+heading+"\n")
	if i < 0 {
		return "", false
	}
	rest := doc[i+len("\n## "+heading+"\n"):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest, true
}
