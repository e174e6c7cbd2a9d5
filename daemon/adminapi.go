package daemon

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The admin listener's groups listing and readiness (admin.go registers
// them; docs/admin-api.md documents them).

// GroupSummary is one group in GET /v1/groups: its members, and which of
// their nodes this node can reach.
type GroupSummary struct {
	Group string `json:"group"`
	// Members counts every member; ReachableMembers those whose node's
	// link is up (this node's own members are always reachable).
	Members          int `json:"members"`
	ReachableMembers int `json:"reachable_members"`
	// Nodes lists the nodes with members: this node first, then by
	// cluster and node. Never null.
	Nodes []GroupNode `json:"nodes"`
}

// GroupNode is a node's share of a group's members.
type GroupNode struct {
	Cluster   string `json:"cluster"`
	Node      string `json:"node"`
	Members   int    `json:"members"`
	Reachable bool   `json:"reachable"`
}

// GroupMember is one member in GET /v1/groups?group=G.
type GroupMember struct {
	Address   string `json:"address"` // cluster/node/mailbox, as the SDK's Addr prints
	Cluster   string `json:"cluster"`
	Node      string `json:"node"`
	Mailbox   uint64 `json:"mailbox"`
	Joins     int    `json:"joins"` // times the mailbox joined the group
	Reachable bool   `json:"reachable"`
}

// serveGroups answers GET /v1/groups: every group (GroupSummary, by
// name), or with ?group=G that group's members (GroupMember). Both lists
// are [] when empty, never null.
func (d *Daemon) serveGroups(w http.ResponseWriter, r *http.Request) {
	if g := r.URL.Query().Get("group"); g != "" {
		out := []GroupMember{}
		for _, m := range d.groups.Members(g) {
			out = append(out, GroupMember{Address: m.Cluster + "/" + m.Node + "/" + strconv.FormatUint(m.Mailbox, 10),
				Cluster: m.Cluster, Node: m.Node, Mailbox: m.Mailbox, Joins: m.Count, Reachable: m.Reachable})
		}
		writeJSON(w, out)
		return
	}
	writeJSON(w, d.groupSummaries())
}

// groupSummaries lists every known group with its members per node.
func (d *Daemon) groupSummaries() []GroupSummary {
	names := make([]string, 0)
	for g := range d.groups.Groups() {
		names = append(names, g)
	}
	sort.Strings(names)
	out := make([]GroupSummary, 0, len(names))
	for _, g := range names {
		s := GroupSummary{Group: g, Nodes: []GroupNode{}}
		for _, m := range d.groups.Members(g) { // this node first, then by cluster and node
			s.Members++
			if m.Reachable {
				s.ReachableMembers++
			}
			if n := len(s.Nodes); n > 0 && s.Nodes[n-1].Cluster == m.Cluster && s.Nodes[n-1].Node == m.Node {
				s.Nodes[n-1].Members++
				continue
			}
			s.Nodes = append(s.Nodes, GroupNode{Cluster: m.Cluster, Node: m.Node, Members: 1, Reachable: m.Reachable})
		}
		if s.Members > 0 { // a group whose members left between the two reads is not listed
			out = append(out, s)
		}
	}
	return out
}

// serveReady answers GET /readyz: 200 while the daemon runs; 503 once it
// is stopping. With ?links=N it also needs at least N links up, and says
// which are not when it has fewer. The body always says why.
func (d *Daemon) serveReady(w http.ResponseWriter, r *http.Request) {
	want := 0
	if v := r.URL.Query().Get("links"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, fmt.Sprintf("/readyz?links=%s: want a whole number of links (0 or more) that must be up", v), http.StatusBadRequest)
			return
		}
		want = n
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if d.ctx.Err() != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready: the daemon is stopping")
		return
	}
	links := d.Status().Links
	var up int
	var down []string
	for _, l := range links {
		if l.State == StateUp {
			up++
			continue
		}
		line := fmt.Sprintf("%s/%s %s since %s", l.Cluster, l.Node, l.State, l.Since.UTC().Format(time.RFC3339))
		if l.LastError != "" {
			line += ": " + l.LastError
		}
		down = append(down, line)
	}
	if up < want {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %d of %d links up, want at least %d\n", up, len(links), want)
		if len(down) > 0 {
			fmt.Fprintf(w, "not up:\n  %s\n", strings.Join(down, "\n  "))
		}
		return
	}
	fmt.Fprintf(w, "ready: %d of %d links up", up, len(links))
	if want > 0 {
		fmt.Fprintf(w, " (at least %d wanted)", want)
	}
	fmt.Fprintln(w)
}
