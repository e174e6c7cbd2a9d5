package daemon

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wandist/wandist/client"
)

// A backlog shows in /v1/status and /metrics: queued messages and bytes,
// the oldest message's age, and a drain estimate of "never" while nothing
// drains.
func TestBacklogFiguresInStatusAndMetrics(t *testing.T) {
	east, west, relay := relayedPair(t)
	east.d.Close()
	east.cfg.Admin.Listen = "127.0.0.1:0"
	east.start()
	waitLink(t, east.d, "west", "west-1")
	mb := subscribe(t, west, "g", east)
	cutPath(t, relay, east)
	pub := connect(t, east)
	for i := 0; i < 100; i++ {
		if err := pub.SendAsync(client.Target{Addr: mb.Addr()}, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + east.d.AdminAddr() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	l := st.Links[0]
	if (l.State != StateDown && l.State != StateConnecting) || l.QueuedMessages != 100 || l.QueuedBytes == 0 || l.OldestSeconds < 0 || l.DrainSeconds != nil {
		t.Fatalf("status: %+v", l)
	}
	resp, err = http.Get("http://" + east.d.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	q := fams["wandist_buffer_messages"]
	if q == nil || q.GetHelp() == "" || len(q.GetMetric()) != 1 || q.GetMetric()[0].GetGauge().GetValue() != 100 {
		t.Fatalf("wandist_buffer_messages: %v", q)
	}
	for _, name := range []string{"wandist_link_up", "wandist_buffer_drain_seconds", "wandist_messages_sent_total", "wandist_buffer_oldest_seconds", "wandist_groups"} {
		if fams[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "wandist_") {
			continue
		}
		if f.GetHelp() == "" || f.Type == nil {
			t.Errorf("metric %s has no help or type", name)
		}
		if strings.HasSuffix(name, "_total") != (f.GetType().String() == "COUNTER") {
			t.Errorf("metric %s: type %v does not match its name", name, f.GetType())
		}
	}
}
