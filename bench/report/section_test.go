package report

import (
	"strings"
	"testing"
)

func TestSetSectionAppendsThenReplaces(t *testing.T) {
	doc := "# Benchmarks\n\nloopback\n"
	doc = SetSection(doc, WANSection, "first")
	if !strings.HasPrefix(doc, "# Benchmarks\n\nloopback\n\n<!-- begin wan") {
		t.Errorf("section not appended after the document:\n%s", doc)
	}
	doc = SetSection(doc+"tail\n", WANSection, "second\n")
	if strings.Contains(doc, "first") || strings.Count(doc, "second") != 1 || !strings.HasSuffix(doc, "tail\n") {
		t.Errorf("section not replaced in place:\n%s", doc)
	}
	sec := Section(doc, WANSection)
	if !strings.Contains(sec, "second\n<!-- end wan -->\n") {
		t.Errorf("Section = %q", sec)
	}
	if Section("no markers", WANSection) != "" {
		t.Error("Section of a document without it is not empty")
	}
}
