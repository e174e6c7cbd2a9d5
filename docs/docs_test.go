package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository's top folder, seen from this package's.
const repoRoot = ".."

// readDoc returns the text of a file of the repository.
func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// citedDocs are the documents whose test names are checked: every .md
// file of the repository (README.md, docs/*.md, configs/, bench/, ...),
// relative to its root.
func citedDocs(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != repoRoot && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(repoRoot, path)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(out, "README.md") || !slices.Contains(out, filepath.Join("docs", "security.md")) {
		t.Fatalf("the walk for .md files found %v: no README.md or docs/security.md", out)
	}
	return out
}

// testFuncs returns the names of every Test and Fuzz function declared in a
// _test.go file anywhere in the repository (the bench module included).
func testFuncs(t *testing.T) map[string]bool {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)[A-Z0-9_][A-Za-z0-9_]*)\(`)
	names := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != repoRoot && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// citedName matches a test or fuzz function's name in prose: TestXxx or
// FuzzXxx, optionally after a ^ (a -run pattern: the name is a prefix).
var citedName = regexp.MustCompile(`(\^?)\b((?:Test|Fuzz)[A-Z][A-Za-z0-9_]*)`)

// Every TestXxx and FuzzXxx the README, docs/*.md and every other .md file
// cite is a test of the repository: a renamed or deleted test is not left
// behind in the docs.
// "^TestXxx" (a -run pattern) needs a test whose name starts with it.
func TestCitedTestsExist(t *testing.T) {
	have := testFuncs(t)
	if len(have) < 100 {
		t.Fatalf("found only %d test functions under %s: is the walk broken?", len(have), repoRoot)
	}
	cited := 0
	for _, doc := range citedDocs(t) {
		for i, line := range strings.Split(readDoc(t, doc), "\n") {
			for _, m := range citedName.FindAllStringSubmatch(line, -1) {
				cited++
				name, prefix := m[2], m[1] == "^"
				if have[name] || prefix && hasPrefix(have, name) {
					continue
				}
				t.Errorf("%s:%d cites %s, which no _test.go file declares", doc, i+1, name)
			}
		}
	}
	if cited < 20 {
		t.Errorf("only %d test names cited in the docs: is the scan broken?", cited)
	}
}

func hasPrefix(names map[string]bool, prefix string) bool {
	for n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// The check itself: a made-up name is reported, a real one and a real
// prefix are not.
func TestCitedTestsExistCatchesMissing(t *testing.T) {
	have := map[string]bool{"TestHandshakeFloodPerSource": true, "TestMembershipMemoryAtTheBudget": true}
	for _, c := range []struct {
		line string
		ok   bool
	}{
		{"`daemon.TestHandshakeFloodPerSource`", true},
		{"`daemon.TestHandshakeFloodIsRateLimited`", false},
		{"-run '^TestMembershipMemory'", true},
		{"-run 'TestMembershipMemory'", false},
	} {
		ok := true
		for _, m := range citedName.FindAllStringSubmatch(c.line, -1) {
			if !have[m[2]] && !(m[1] == "^" && hasPrefix(have, m[2])) {
				ok = false
			}
		}
		if ok != c.ok {
			t.Errorf("%q: passes = %v, want %v", c.line, ok, c.ok)
		}
	}
}
