package daemon

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// lintedNode is a daemon with a link up, a spool and a group member, so
// that its /metrics shows every kind of series.
func lintedNode(t *testing.T) *node {
	east, west := pairWith(t, "mem", func(east, west *node) {
		withAdmin(east, west)
		east.cfg.Spool.Dir = filepath.Join(t.TempDir(), "spool")
	})
	subscribe(t, west, "g", east)
	return east
}

// /metrics passes client_golang's promlint: names, units, help and types
// as Prometheus' conventions have them.
func TestMetricsLint(t *testing.T) {
	n := lintedNode(t)
	resp, err := http.Get("http://" + n.d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"wandist_link_up", "wandist_spool_bytes", "wandist_group_members", "go_goroutines"} {
		if !bytes.Contains(body, []byte("\n"+name+" ")) && !bytes.Contains(body, []byte("\n"+name+"{")) {
			t.Fatalf("/metrics has no %s: the lint would miss it", name)
		}
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint cannot read /metrics: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
