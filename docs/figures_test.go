package docs

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The README's benchmark figures sit between these markers.
const (
	figuresBegin = "<!-- figures:"
	figuresEnd   = "<!-- end of figures -->"
)

// figure matches a number as the README quotes one, with the unit or
// suffix that makes it a figure: 1.14M, 756k, 1.57x, 92 %, 74.6 KiB,
// 1.51 ms, 128 B, 1000.
var figure = regexp.MustCompile(`\d+(?:\.\d+)?(?:[kM]\b|x\b| ?%| KiB| MiB| ms\b| µs\b| B\b)?`)

// looksLikeFigure matches what only a benchmark figure looks like: a
// ratio, a rate, a percentage, a size in KiB, a latency.
var looksLikeFigure = regexp.MustCompile(`\d(?:\.\d+)?[x×](?:\W|$)|\d[kM]? msgs/s|\d ?%|\d KiB|\d(?:\.\d+)? (?:ms|µs)\b`)

// figureRegions splits the README into the text between the figure markers
// and the text outside them.
func figureRegions(readme string) (inside []string, outside string, err string) {
	var out strings.Builder
	for {
		i := strings.Index(readme, figuresBegin)
		if i < 0 {
			out.WriteString(readme)
			break
		}
		out.WriteString(readme[:i])
		rest := readme[i:]
		j := strings.Index(rest, figuresEnd)
		if j < 0 {
			return nil, "", "a figures marker is not closed by " + figuresEnd
		}
		body := rest[:j]
		body = body[strings.Index(body, "-->")+3:] // the marker's own text is not figures
		inside = append(inside, body)
		readme = rest[j+len(figuresEnd):]
	}
	return inside, out.String(), ""
}

// inBenchmarks says whether tok occurs in BENCHMARKS.md as a whole number
// (not as part of a longer one).
func inBenchmarks(bench, tok string) bool {
	re := regexp.MustCompile(`(?:^|[^\d.])` + regexp.QuoteMeta(tok) + `(?:[^\d]|$)`)
	return re.MatchString(bench)
}

// checkFigures returns what is wrong with readme's figures against bench.
func checkFigures(readme, bench string) []string {
	bench = strings.ReplaceAll(bench, "×", "x")
	inside, outside, bad := figureRegions(readme)
	if bad != "" {
		return []string{bad}
	}
	var problems []string
	if len(inside) == 0 {
		problems = append(problems, "no figures between "+figuresBegin+" and "+figuresEnd+" markers")
	}
	for _, body := range inside {
		for _, tok := range figure.FindAllString(body, -1) {
			if !inBenchmarks(bench, tok) {
				problems = append(problems, "figure "+tok+" is not in BENCHMARKS.md")
			}
		}
	}
	for i, line := range strings.Split(outside, "\n") {
		if m := looksLikeFigure.FindString(line); m != "" {
			problems = append(problems, "outside the figures markers, "+strings.TrimSpace(m)+" looks like a benchmark figure: "+strings.TrimSpace(line)+" (line "+strconv.Itoa(i+1)+" of the text outside the markers)")
		}
	}
	return problems
}

// Every figure the README quotes is one of BENCHMARKS.md's: the README
// does not keep figures of an older run, and none stands outside the
// markers, where this test would not see it.
func TestReadmeFiguresFromBenchmarks(t *testing.T) {
	for _, p := range checkFigures(readDoc(t, "README.md"), readDoc(t, "BENCHMARKS.md")) {
		t.Error("README.md: " + p)
	}
}

// The check itself: a stale figure, one outside the markers and an
// unclosed marker are reported; current figures are not.
func TestReadmeFiguresCheckCatchesStale(t *testing.T) {
	bench := "| wandist-tcp | 128 B | 1.14M | 1.57× | 74.6 KiB | 92 % |\n"
	ok := "a\n<!-- figures: x -->\n1.14M msgs/s, 1.57x of NATS, 74.6 KiB, 92 %, 128 B\n<!-- end of figures -->\nb\n"
	if p := checkFigures(ok, bench); len(p) != 0 {
		t.Errorf("current figures reported: %v", p)
	}
	for _, c := range []struct{ name, readme, want string }{
		{"stale", "<!-- figures: x -->\n2.06x of NATS\n<!-- end of figures -->\n", "figure 2.06x is not in BENCHMARKS.md"},
		{"stale size", "<!-- figures: x -->\n148 KiB per idle link\n<!-- end of figures -->\n", "figure 148 KiB is not in BENCHMARKS.md"},
		{"part of a longer number", "<!-- figures: x -->\n14M\n<!-- end of figures -->\n", "figure 14M is not"},
		{"outside", ok + "at 1.96x NATS\n", "1.96x looks like a benchmark figure"},
		{"unclosed", "<!-- figures: x -->\n1.57x\n", "not closed"},
	} {
		p := checkFigures(c.readme, bench)
		if !strings.Contains(strings.Join(p, "\n"), c.want) {
			t.Errorf("%s: problems %q, want one saying %q", c.name, p, c.want)
		}
	}
}
