package report

import (
	"fmt"
	"strings"
)

// The markers around a named section of BENCHMARKS.md that another run
// writes (the WAN bench's tables beside the loopback ones).
func sectionMarkers(name string) (begin, end string) {
	return fmt.Sprintf("<!-- begin %s: written by its own run, kept by the others -->\n", name), fmt.Sprintf("<!-- end %s -->\n", name)
}

// Section returns the named section of doc, markers included, or "".
func Section(doc, name string) string {
	begin, end := sectionMarkers(name)
	i := strings.Index(doc, begin)
	if i < 0 {
		return ""
	}
	j := strings.Index(doc[i:], end)
	if j < 0 {
		return ""
	}
	return doc[i : i+j+len(end)]
}

// SetSection returns doc with the named section's body replaced by body,
// or the section appended when doc has none.
func SetSection(doc, name, body string) string {
	begin, end := sectionMarkers(name)
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	sec := begin + body + end
	if old := Section(doc, name); old != "" {
		return strings.Replace(doc, old, sec, 1)
	}
	if doc != "" && !strings.HasSuffix(doc, "\n\n") {
		doc = strings.TrimRight(doc, "\n") + "\n\n"
	}
	return doc + sec
}

// WANSection is the name of the WAN bench's section.
const WANSection = "wan"
