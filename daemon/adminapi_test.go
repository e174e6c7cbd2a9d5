package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// adminGet fetches path from n's admin listener: its status and body.
func adminGet(t testing.TB, n *node, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.d.AdminAddr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// adminJSON fetches path and decodes its JSON into v.
func adminJSON(t testing.TB, n *node, path string, v any) {
	t.Helper()
	code, body := adminGet(t, n, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// withAdmin is a pairWith setup giving both nodes an admin listener.
func withAdmin(east, west *node) {
	east.cfg.Admin.Listen, west.cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0"
}

// Empty lists are [], never null, on every list endpoint, and the units
// are seconds: no field of /v1/status ends in _ms.
func TestAdminListsNeverNull(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Admin.Listen = "127.0.0.1:0"
	n.start()
	for _, path := range []string{"/v1/links", "/v1/backlog", "/v1/groups", "/v1/groups?group=nobody"} {
		code, body := adminGet(t, n, path)
		if code != http.StatusOK || strings.TrimSpace(body) != "[]" {
			t.Errorf("GET %s on a fresh daemon: %d %q, want 200 []", path, code, body)
		}
	}
	east, _ := pairWith(t, "mem", withAdmin)
	_, body := adminGet(t, east, "/v1/status")
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st["links"] == nil || strings.Contains(body, "_ms\"") || !strings.Contains(body, `"rtt_seconds"`) {
		t.Errorf("/v1/status: links null, a _ms field, or no rtt_seconds:\n%s", body)
	}
	// An empty buffer drains in 0 s (null is kept for "never").
	if !strings.Contains(body, `"drain_seconds": 0`) {
		t.Errorf("/v1/status: an empty buffer's drain_seconds is not 0:\n%s", body)
	}
}

// GET /v1/groups lists every group with its members per node and their
// reachability; a cut link shows as unreachable members.
func TestAdminGroupsListing(t *testing.T) {
	east, west := pairWith(t, "mem", withAdmin)
	subscribe(t, east, "g")
	subscribe(t, west, "g", east)
	subscribe(t, west, "h", east)
	var got []GroupSummary
	adminJSON(t, east, "/v1/groups", &got)
	want := []GroupSummary{
		{Group: "g", Members: 2, ReachableMembers: 2, Nodes: []GroupNode{
			{Cluster: "east", Node: "east-1", Members: 1, Reachable: true},
			{Cluster: "west", Node: "west-1", Members: 1, Reachable: true}}},
		{Group: "h", Members: 1, ReachableMembers: 1, Nodes: []GroupNode{
			{Cluster: "west", Node: "west-1", Members: 1, Reachable: true}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("/v1/groups:\n got %+v\nwant %+v", got, want)
	}
	var members []GroupMember
	adminJSON(t, east, "/v1/groups?group=g", &members)
	if len(members) != 2 || members[0].Cluster != "east" || members[1].Address != "west/west-1/"+jsonUint(members[1].Mailbox) || !members[1].Reachable || members[1].Joins != 1 {
		t.Fatalf("/v1/groups?group=g: %+v", members)
	}

	east.block("west", "west-1", true)
	deadline := time.Now().Add(20 * time.Second)
	for {
		adminJSON(t, east, "/v1/groups", &got)
		if len(got) == 2 && got[0].ReachableMembers == 1 && got[1].ReachableMembers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("west's members still reachable after the cut: %+v", got)
		}
		time.Sleep(50 * time.Millisecond) // polling the listing; no event to wait on over HTTP
	}
	if g := got[0]; g.Members != 2 || len(g.Nodes) != 2 || !g.Nodes[0].Reachable || g.Nodes[1].Reachable {
		t.Fatalf("after the cut: %+v", g)
	}
}

func jsonUint(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// /readyz answers ready while the daemon runs; ?links=N needs N links up
// and, when not ready, says which links are down and why.
func TestReadyzLinks(t *testing.T) {
	east, west := pairWith(t, "mem", withAdmin)
	for path, want := range map[string]string{"/readyz": "ready: 1 of 1 links up", "/readyz?links=1": "ready: 1 of 1 links up (at least 1 wanted)"} {
		if code, body := adminGet(t, east, path); code != http.StatusOK || strings.TrimSpace(body) != want {
			t.Errorf("GET %s with the link up: %d %q, want 200 %q", path, code, body, want)
		}
	}
	if code, body := adminGet(t, east, "/readyz?links=two"); code != http.StatusBadRequest || !strings.Contains(body, "links=two") {
		t.Errorf("GET /readyz?links=two: %d %q, want 400 naming the bad value", code, body)
	}
	west.d.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := adminGet(t, east, "/readyz?links=1")
		if code == http.StatusServiceUnavailable {
			if !strings.HasPrefix(body, "not ready: 0 of 1 links up, want at least 1\n") || !strings.Contains(body, "west/west-1 ") {
				t.Fatalf("not-ready body does not say why: %q", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz?links=1 with west stopped: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond) // polling the endpoint under test
	}
	// Without ?links a daemon with every link down is still ready: it runs,
	// buffers and will link when its peers come.
	if code, body := adminGet(t, east, "/readyz"); code != http.StatusOK || strings.TrimSpace(body) != "ready: 0 of 1 links up" {
		t.Fatalf("GET /readyz with the link down: %d %q", code, body)
	}
}

// docs/admin-api.md documents every JSON field of the admin API and every
// metric, with the metric's help text.
func TestAdminAPIDocCoversEveryFieldAndMetric(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "admin-api.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, v := range []any{Status{}, LinkStatus{}, SpoolStatus{}, HoldStatus{}, CertStatus{}, ClusterMember{},
		GroupSummary{}, GroupNode{}, GroupMember{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no JSON name", typ.Name(), typ.Field(i).Name)
				continue
			}
			if !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("docs/admin-api.md does not document %s's field `%s`", typ.Name(), name)
			}
		}
	}
	fams := scrapeFamilies(t, lintedNode(t))
	for _, name := range registeredMetrics(t) {
		row := "| `" + name + "` |"
		i := strings.Index(doc, row)
		if i < 0 {
			t.Errorf("docs/admin-api.md has no row for %s", name)
			continue
		}
		line, _, _ := strings.Cut(doc[i:], "\n")
		if f := fams[name]; f != nil && !strings.Contains(line, strings.ReplaceAll(f.GetHelp(), "|", `\|`)) {
			t.Errorf("docs/admin-api.md: %s's row does not give its help text %q", name, f.GetHelp())
		}
	}
}
