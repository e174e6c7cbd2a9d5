package daemon

import (
	"fmt"
	"sort"
	"time"
)

// statuspage_state.go: what /ui/state.json answers, built from the
// daemon's own state (not from the /v1 API, whose shape is its own). All
// durations are in seconds.

// pageMaxGroups bounds the groups the page lists (by name); more are
// counted in GroupsHidden.
const pageMaxGroups = 200

// pageState is the status page's view of the node.
type pageState struct {
	Cluster string    `json:"cluster"`
	Node    string    `json:"node"`
	Time    time.Time `json:"time"`
	// HistoryIntervalSeconds is the time between two samples of a link's
	// History.
	HistoryIntervalSeconds float64     `json:"history_interval_seconds"`
	Links                  []pageLink  `json:"links"`
	Groups                 []pageGroup `json:"groups"`
	GroupsHidden           int         `json:"groups_hidden"` // groups past pageMaxGroups, not listed
	Alerts                 []pageAlert `json:"alerts"`
}

// pageLink is one destination: its link and its backlog.
type pageLink struct {
	Peer           string    `json:"peer"` // cluster/node
	State          string    `json:"state"`
	Since          time.Time `json:"since"`
	RTTSeconds     float64   `json:"rtt_seconds"` // 0 while no link is up
	Transport      string    `json:"transport"`
	Remote         string    `json:"remote"`
	LastError      string    `json:"last_error"`
	QueuedMessages int       `json:"queued_messages"`
	QueuedBytes    int64     `json:"queued_bytes"`
	OldestSeconds  float64   `json:"oldest_seconds"`
	// History is the queued messages at each janitor tick, oldest first,
	// for up to the last historyLen ticks.
	History []int `json:"history"`
}

// pageGroup is a group and where its members are.
type pageGroup struct {
	Name      string          `json:"name"`
	Members   int             `json:"members"`
	Reachable int             `json:"reachable"` // members whose node is reachable
	Nodes     []pageGroupNode `json:"nodes"`
}

// pageGroupNode is a node with members of a group.
type pageGroupNode struct {
	Node      string `json:"node"` // cluster/node
	Members   int    `json:"members"`
	Reachable bool   `json:"reachable"`
}

// pageAlert is a condition an operator should look at.
type pageAlert struct {
	Kind  string    `json:"kind"` // "backlog", "unreachable" or "spool"
	Peer  string    `json:"peer,omitempty"`
	Since time.Time `json:"since,omitzero"`
	Text  string    `json:"text"`
}

// pageState gathers the page's view; lists are never null.
func (d *Daemon) pageState() pageState {
	st := pageState{Cluster: d.cfg.Cluster, Node: d.cfg.Node, Time: d.now(), HistoryIntervalSeconds: 1,
		Links: []pageLink{}, Groups: []pageGroup{}, Alerts: []pageAlert{}}
	for _, p := range d.peerList() {
		ps := p.status()
		qs := p.queue.Stats()
		h := d.history.snapshot(p.id)
		l := pageLink{Peer: p.nodeName(), State: ps.state, Since: ps.since, RTTSeconds: ps.rtt.Seconds(),
			Transport: ps.transport, Remote: ps.remote, LastError: ps.lastErr,
			QueuedMessages: qs.Messages, QueuedBytes: qs.Bytes, OldestSeconds: qs.OldestAge.Seconds(),
			History: make([]int, len(h.samples))}
		for i, s := range h.samples {
			l.History[i] = s.messages
		}
		st.Links = append(st.Links, l)
		if !h.alertRaised.IsZero() {
			st.Alerts = append(st.Alerts, pageAlert{Kind: "backlog", Peer: l.Peer, Since: h.alertRaised,
				Text: fmt.Sprintf("backlog over threshold: %d messages queued, oldest %.0f s", qs.Messages, qs.OldestAge.Seconds())})
		}
		if p.pastGrace.Load() {
			st.Alerts = append(st.Alerts, pageAlert{Kind: "unreachable", Peer: l.Peer, Since: ps.since,
				Text: "link down past groups.unreachable_grace: its members stay listed, messages for it wait in its buffer"})
		}
	}
	sort.Slice(st.Links, func(i, j int) bool { return st.Links[i].Peer < st.Links[j].Peer })
	sort.SliceStable(st.Alerts, func(i, j int) bool { return st.Alerts[i].Peer < st.Alerts[j].Peer })
	if d.spool != nil {
		if e := d.spool.Stats().Err; e != "" {
			st.Alerts = append(st.Alerts, pageAlert{Kind: "spool", Text: "spool: " + e})
		}
	}
	st.Groups, st.GroupsHidden = d.pageGroups()
	return st
}

// pageGroups lists the groups by name, at most pageMaxGroups, with their
// members counted per node.
func (d *Daemon) pageGroups() ([]pageGroup, int) {
	counts := d.groups.Groups()
	names := make([]string, 0, len(counts))
	for g := range counts {
		names = append(names, g)
	}
	sort.Strings(names)
	hidden := max(0, len(names)-pageMaxGroups)
	names = names[:len(names)-hidden]
	out := make([]pageGroup, 0, len(names))
	for _, name := range names {
		g := pageGroup{Name: name, Nodes: []pageGroupNode{}}
		for _, m := range d.groups.Members(name) { // sorted by node
			node := m.Cluster + "/" + m.Node
			if n := len(g.Nodes); n == 0 || g.Nodes[n-1].Node != node {
				g.Nodes = append(g.Nodes, pageGroupNode{Node: node, Reachable: m.Reachable})
			}
			g.Nodes[len(g.Nodes)-1].Members++
			g.Members++
			if m.Reachable {
				g.Reachable++
			}
		}
		out = append(out, g)
	}
	return out, hidden
}
