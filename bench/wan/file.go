package wan

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/wandist/wandist/bench/report"
)

// Section renders r as BENCHMARKS.md's WAN section (without its markers).
func Section(r *Result) string {
	var b bytes.Buffer
	b.WriteString("## WAN: 50 ms RTT, loss, a 10 s blackout (issue 19)\n\n")
	b.WriteString("Every system with its servers in two network namespaces joined by an emulated WAN, in one run (`bench/wan`; bench/README.md has the definitions). Judge by the ratios within the run.\n\n")
	Write(&b, r)
	return b.String()
}

// WriteMarkdown puts r's section into the file at path, keeping the rest
// of it (the loopback tables); a missing file is created.
func WriteMarkdown(path string, r *Result) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	doc := string(old)
	if doc == "" {
		doc = "# Benchmarks\n\n"
	}
	if err := os.WriteFile(path, []byte(report.SetSection(doc, report.WANSection, Section(r))), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
