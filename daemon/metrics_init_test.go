package daemon

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wandist/wandist/configs"
)

// scrapeFamilies reads n's /metrics over HTTP and parses it.
func scrapeFamilies(t testing.TB, n *node) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + n.d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// series finds the series of family name whose labels include want; ok
// false if there is none.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
		return 0, true
	}
	return 0, false
}

// wantZero fails unless family name has a series with labels at 0.
func wantZero(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels map[string]string) {
	t.Helper()
	if v, ok := series(fams, name, labels); !ok || v != 0 {
		t.Errorf("%s%v: present %v, value %v; want present at 0 on a fresh daemon", name, labels, ok, v)
	}
}

// A fresh daemon's /metrics has every configured peer's series and every
// reason's at 0, and a peer added by reload gets its series at once.
func TestFreshDaemonMetricsAtZero(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Admin.Listen = "127.0.0.1:0"
	// Two peers that never link: one accepted, one dialled at nothing.
	w1, w2 := newNode(t, "mem", "west", "west-1"), newNode(t, "mem", "west", "west-2")
	n.cfg.Peers = []configs.Peer{peerOf(w1, "mem", "", "accept"), peerOf(w2, "mem", "mem-nowhere:1", "connect")}
	// And a remote cluster found by seeds that do not answer.
	w := newCAWorld(t, "east", "south")
	n.cfg.Remotes = []configs.Remote{w.remote("south", "mem", unusedSeed("mem"))}
	w.start(n)
	fams := scrapeFamilies(t, n)
	for _, name := range []string{"wandist_discovered_peers", "wandist_discovery_removed_total"} {
		wantZero(t, fams, name, map[string]string{"cluster": "south"})
	}
	if _, ok := series(fams, "wandist_discovery_probes_total", map[string]string{"cluster": "south", "result": "answered"}); !ok {
		t.Errorf("wandist_discovery_probes_total{cluster=south,result=answered} missing")
	}
	checkPeers := func(fams map[string]*dto.MetricFamily, nodes ...string) {
		t.Helper()
		for _, node := range nodes {
			peer := map[string]string{"cluster": "west", "node": node}
			for _, name := range []string{"wandist_link_up", "wandist_link_reconnects_total", "wandist_link_rtt_seconds",
				"wandist_messages_undeliverable_total", "wandist_peer_removed_discards_total", "wandist_membership_throttled_total",
				"wandist_buffer_messages", "wandist_buffer_bytes", "wandist_buffer_enqueued_total", "wandist_buffer_dequeued_total",
				"wandist_buffer_redelivered_total", "wandist_buffer_oldest_seconds", "wandist_buffer_drain_seconds"} {
				wantZero(t, fams, name, peer)
			}
			for _, r := range membershipRefusedReasons() {
				wantZero(t, fams, "wandist_membership_refused_total", map[string]string{"cluster": "west", "node": node, "reason": r})
			}
			for _, r := range bufferDropReasons {
				wantZero(t, fams, "wandist_buffer_discards_total", map[string]string{"cluster": "west", "node": node, "reason": r})
			}
		}
	}
	checkPeers(fams, "west-1", "west-2")
	for name, reasons := range map[string][]string{
		"wandist_messages_dropped_total":     droppedReasons,
		"wandist_local_rejections_total":     localRejectReasons,
		"wandist_admin_auth_failures_total":  adminAuthReasons,
		"wandist_handshake_rejections_total": helloRefusals,
	} {
		for _, r := range reasons {
			wantZero(t, fams, name, map[string]string{"reason": r})
		}
	}
	for _, k := range protocolErrorKinds {
		wantZero(t, fams, "wandist_protocol_errors_total", map[string]string{"kind": k})
	}
	checkLiteralLabels(t, fams)

	// A peer added by reload has its series before it ever links.
	cfg := *n.d.Config()
	w3 := newNode(t, "mem", "west", "west-3")
	cfg.Peers = append(slices.Clone(cfg.Peers), peerOf(w3, "mem", "", "accept"))
	if err := n.d.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	checkPeers(scrapeFamilies(t, n), "west-3")
}

var (
	// vecFieldRE finds a labelled metric's field and name in the daemon's
	// source: `dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wandist_…"`.
	vecFieldRE = regexp.MustCompile(`(?:m\.)?(\w+)(?::| =)\s*prometheus\.New\w+Vec\(prometheus\.\w+Opts\{Name:\s*"(wandist_\w+)"`)
	// literalLabelRE finds a count under a literal label value:
	// `metrics.dropped.WithLabelValues("no_mailbox")`, or with the literal last.
	literalLabelRE = regexp.MustCompile(`metrics\.(\w+)\.WithLabelValues\((?:[^,()]+, )*"([a-z_]+)"\)`)
)

// checkLiteralLabels checks that every label value the daemon's code
// counts under by a literal has its series on a fresh daemon: a reason
// added to the code and not to metrics_init.go fails here.
func checkLiteralLabels(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	names := map[string]string{} // field -> metric name
	for _, m := range vecFieldRE.FindAllStringSubmatch(src.String(), -1) {
		names[m[1]] = m[2]
	}
	uses := literalLabelRE.FindAllStringSubmatch(src.String(), -1)
	if len(uses) < 10 {
		t.Fatalf("found only %d literal label uses in the source: the pattern no longer matches the code", len(uses))
	}
	for _, u := range uses {
		name, ok := names[u[1]]
		if !ok {
			t.Errorf("metrics.%s: no metric found for the field in the source", u[1])
			continue
		}
		found := false
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				found = found || l.GetValue() == u[2]
			}
		}
		if !found {
			t.Errorf("%s has no series labelled %q on a fresh daemon (counted in the code: %s)", name, u[2], u[0])
		}
	}
}
