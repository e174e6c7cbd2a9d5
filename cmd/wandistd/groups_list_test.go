package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
)

// startLone starts a daemon with no peers, with an admin listener and a
// local socket, from a config file.
func startLone(t *testing.T) *daemon.Daemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "wg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	mustCLI(t, "keygen", "-o", filepath.Join(dir, "n.key"))
	text := `cluster: east
node: east-1
identity: n.key
listen: {tcp: "127.0.0.1:0"}
local: {socket: n.sock}
admin: {listen: "127.0.0.1:0"}
`
	path := filepath.Join(dir, "n.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// `wandistd groups` without --group lists every group with its members,
// how many are reachable, and on which nodes.
func TestGroupsListsEveryGroup(t *testing.T) {
	d := startLone(t)
	if out := mustCLI(t, "groups", "--admin", d.AdminAddr()); strings.TrimSpace(out) != "GROUP  MEMBERS  REACHABLE  NODES" {
		t.Fatalf("no groups yet: %q, want the header alone", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Socket: d.Config().Local.Socket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, g := range []string{"orders", "orders", "audit"} {
		mb, err := c.NewMailbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := mb.Join(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	out := mustCLI(t, "groups", "--admin", d.AdminAddr())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{`^GROUP +MEMBERS +REACHABLE +NODES$`, `^audit +1 +1 +east/east-1 \(1\)$`, `^orders +2 +2 +east/east-1 \(2\)$`}
	if len(lines) != len(want) {
		t.Fatalf("groups printed %q, want %d lines", out, len(want))
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d: %q does not match %s", i, lines[i], re)
		}
	}
	if code, _, errOut := runCLI("groups", "--watch"); code != 2 || !strings.Contains(errOut, "need --group") {
		t.Errorf("groups --watch without --group: exit %d, %q", code, errOut)
	}
}

// An unreachable node's members show as such in the listing, and the
// status table says "never" for a buffer that does not drain (null in
// the JSON).
func TestGroupsAndStatusRenderUnreachableAndNever(t *testing.T) {
	gs := []daemon.GroupSummary{{Group: "g", Members: 3, ReachableMembers: 1, Nodes: []daemon.GroupNode{
		{Cluster: "east", Node: "east-1", Members: 1, Reachable: true},
		{Cluster: "west", Node: "west-1", Members: 2, Reachable: false}}}}
	st := daemon.Status{Cluster: "east", Node: "east-1", Links: []daemon.LinkStatus{
		{Cluster: "west", Node: "west-1", State: daemon.StateDown, QueuedMessages: 5, DrainSeconds: nil}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/groups":
			json.NewEncoder(w).Encode(gs)
		case "/v1/status":
			json.NewEncoder(w).Encode(st)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	out := mustCLI(t, "groups", "--admin", addr)
	if !regexp.MustCompile(`(?m)^g +3 +1 +east/east-1 \(1\), west/west-1 \(2, unreachable\)$`).MatchString(out) {
		t.Errorf("groups: %q", out)
	}
	out = mustCLI(t, "status", "--admin", addr)
	if !regexp.MustCompile(`(?m)^west +west-1 .* never `).MatchString(out) {
		t.Errorf("status does not say never for a buffer that does not drain:\n%s", out)
	}
	raw, _ := json.Marshal(st.Links[0])
	if !strings.Contains(string(raw), `"drain_seconds":null`) {
		t.Errorf("LinkStatus JSON: %s", raw)
	}
}
