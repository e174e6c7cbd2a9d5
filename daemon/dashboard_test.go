package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/wandist/wandist/configs"
)

var (
	// metricDefRE finds a metric's name where the daemon's source defines
	// it: `Name: "wandist_…"` in an Opts, or `NewDesc("wandist_…"`.
	metricDefRE = regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(wandist_\w+)"`)
	metricUseRE = regexp.MustCompile(`wandist_\w+`)
)

// registeredMetrics lists the wandist_ metrics of a daemon with every
// part on (a CA-issued certificate, a spool, a peer, a remote cluster):
// those its registry gathers, and those its source defines.
func registeredMetrics(t *testing.T) []string {
	t.Helper()
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Admin.Listen = "127.0.0.1:0"
	n.cfg.Spool.Dir = filepath.Join(t.TempDir(), "spool")
	w1 := newNode(t, "mem", "west", "west-1")
	n.cfg.Peers = []configs.Peer{peerOf(w1, "mem", "", "accept")}
	w := newCAWorld(t, "east", "south")
	n.cfg.Remotes = []configs.Remote{w.remote("south", "mem", unusedSeed("mem"))}
	w.start(n)
	names := map[string]bool{}
	for name := range scrapeFamilies(t, n) {
		if strings.HasPrefix(name, "wandist_") {
			names[name] = true
		}
	}
	gathered := len(names)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricDefRE.FindAllSubmatch(src, -1) {
			if !names[string(m[1])] {
				t.Errorf("%s defines %s, which a daemon with every part on does not expose", f, m[1])
			}
			names[string(m[1])] = true
		}
	}
	if gathered < 50 {
		t.Fatalf("only %d wandist_ metrics gathered", gathered)
	}
	out := make([]string, 0, len(names))
	for m := range names {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// The Grafana dashboard (configs/grafana) queries every metric the daemon
// registers.
func TestDashboardCoversEveryMetric(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "configs", "grafana", "wandist-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	queried := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && k == "expr" {
					for _, m := range metricUseRE.FindAllString(s, -1) {
						queried[m] = true
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(dash)
	for _, m := range registeredMetrics(t) {
		if !queried[m] {
			t.Errorf("no dashboard panel queries %s", m)
		}
	}
}
