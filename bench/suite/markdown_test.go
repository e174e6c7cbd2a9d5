package suite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wandist/wandist/bench/report"
)

// The loopback run rewrites BENCHMARKS.md but keeps the WAN bench's section.
func TestWriteMarkdownKeepsWANSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	old := report.SetSection("# Benchmarks\n\nold loopback tables\n", report.WANSection, "## WAN\n\nwan tables\n")
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(path, Result{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if strings.Contains(doc, "old loopback tables") {
		t.Error("the loopback tables were not rewritten")
	}
	if sec := report.Section(doc, report.WANSection); !strings.Contains(sec, "wan tables") {
		t.Errorf("the WAN section was lost:\n%s", doc)
	}
}
