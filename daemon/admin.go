package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
)

// adminServer serves /metrics, /v1/status, /v1/links, /v1/backlog,
// /v1/groups, /healthz and /readyz over HTTP; with admin.token, also POST
// /v1/reload and pprof (see adminGuard). docs/admin-api.md documents them.
type adminServer struct {
	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup
}

func startAdmin(d *Daemon, addr string) (*adminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, d.Status()) })
	mux.HandleFunc("/v1/links", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, d.Status().Links) })
	mux.HandleFunc("/v1/backlog", func(w http.ResponseWriter, r *http.Request) {
		out := []LinkStatus{}                // never null
		for _, l := range d.Status().Links { // worst first already
			if l.QueuedMessages > 0 {
				out = append(out, l)
			}
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("/v1/groups", d.serveGroups) // adminapi.go
	guard := &adminGuard{d: d, token: d.cfg.Admin.Token}
	mux.Handle("/v1/reload", guard.privileged(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST to reload the config", http.StatusMethodNotAllowed)
			return
		}
		if err := d.ReloadFromSource(); err != nil {
			d.log.Error("reload refused; the running config stays in force", "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "reloaded")
	}))
	switch {
	case guard.token == "":
		mux.Handle("/debug/pprof/", guard.privileged(nil))
	case d.cfg.Admin.Pprof:
		mux.Handle("/debug/pprof/", guard.privileged(pprof.Index))
		mux.Handle("/debug/pprof/cmdline", guard.privileged(pprof.Cmdline))
		mux.Handle("/debug/pprof/profile", guard.privileged(pprof.Profile))
		mux.Handle("/debug/pprof/symbol", guard.privileged(pprof.Symbol))
		mux.Handle("/debug/pprof/trace", guard.privileged(pprof.Trace))
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", d.serveReady) // adminapi.go
	s := &adminServer{ln: ln, srv: &http.Server{Handler: withStatusPage(d, guard, guard.all(mux)), ReadHeaderTimeout: 5 * time.Second}}
	s.wg.Go(func() { _ = s.srv.Serve(ln) })
	return s, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *adminServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	s.wg.Wait()
}

// Status is what /v1/status answers and `wandistd status` shows.
type Status struct {
	Cluster     string       `json:"cluster"`
	Node        string       `json:"node"`
	Incarnation string       `json:"incarnation"`
	PublicKey   string       `json:"public_key"`
	Links       []LinkStatus `json:"links"`
	Groups      int          `json:"groups"`
	Spool       *SpoolStatus `json:"spool,omitempty"`
	Hold        HoldStatus   `json:"hold"`
	// Certificate is this node's CA-issued certificate; absent when it
	// presents a self-signed one.
	Certificate *CertStatus `json:"certificate,omitempty"`
	// ClusterView is this node's cluster by gossip (cluster.go); absent without gossip.bind.
	ClusterView []ClusterMember `json:"cluster_view,omitempty"`
}

// HoldStatus is what waits on this node for its client or group member
// (the hold), against its bounds, and what left it other than to a client.
type HoldStatus struct {
	Messages      int    `json:"messages"`
	Bytes         int    `json:"bytes"`
	MaxMessages   int    `json:"max_messages"`
	MaxBytes      int    `json:"max_bytes"`
	Expired       uint64 `json:"expired"`       // TTL or buffer.max_age ran out
	Undeliverable uint64 `json:"undeliverable"` // for an address whose mailbox is gone
	RoutedOn      uint64 `json:"routed_on"`     // to the group's member on another node
}

// SpoolStatus describes the durable spool.
type SpoolStatus struct {
	Bytes            int64   `json:"bytes"`
	Segments         int     `json:"segments"`
	Appends          uint64  `json:"appends"`
	Fsyncs           uint64  `json:"fsyncs"`
	LastFsyncSeconds float64 `json:"last_fsync_seconds"` // the last fsync's duration
	Error            string  `json:"error,omitempty"`
}

// LinkStatus is one peer's link and buffer.
type LinkStatus struct {
	Cluster        string    `json:"cluster"`
	Node           string    `json:"node"`
	Transport      string    `json:"transport"`
	State          string    `json:"state"`
	Since          time.Time `json:"since"`
	RTTSeconds     float64   `json:"rtt_seconds"` // the last keepalive's round trip
	Remote         string    `json:"remote,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	QueuedMessages int       `json:"queued_messages"`
	QueuedBytes    int64     `json:"queued_bytes"`
	InFlightBytes  int64     `json:"in_flight_bytes"` // sent on the current link, not yet acknowledged
	OldestSeconds  float64   `json:"oldest_seconds"`
	Sent           uint64    `json:"sent"`
	Redelivered    uint64    `json:"redelivered"`
	Duplicates     uint64    `json:"duplicates_dropped"`
	EnqueueRate    float64   `json:"enqueue_per_second"`
	DequeueRate    float64   `json:"dequeue_per_second"`
	// DrainSeconds estimates the time to drain the buffer at the current
	// rates: 0 when empty, nil (JSON null) when it never drains at them.
	DrainSeconds  *float64          `json:"drain_seconds"`
	Rejected      uint64            `json:"rejected_busy"`
	Discarded     map[string]uint64 `json:"discarded,omitempty"`
	PastGrace     bool              `json:"unreachable_past_grace,omitempty"` // down for groups.unreachable_grace or longer
	Undeliverable uint64            `json:"undeliverable"`                    // sent to an address whose mailbox the peer no longer had
	// PeerCertificate is the certificate the peer presented on the up link.
	PeerCertificate *CertStatus `json:"peer_certificate,omitempty"`
	// Discovered: the peer was found by discovery (remotes[]), not named
	// in the config.
	Discovered bool `json:"discovered,omitempty"`
}

// Status returns the node's links and buffers, sorted by peer.
func (d *Daemon) Status() Status {
	st := Status{Cluster: d.cfg.Cluster, Node: d.cfg.Node, Incarnation: fmt.Sprintf("%016x", d.incarnation),
		PublicKey: auth.FormatPublicKey(d.id.Public()), Links: []LinkStatus{}, Groups: len(d.groups.Groups())}
	st.Hold = d.hold.status()
	st.Certificate = certStatus(d.nodeCert)
	st.ClusterView = d.clusterStatus()
	if d.spool != nil {
		ss := d.spool.Stats()
		st.Spool = &SpoolStatus{Bytes: ss.Bytes, Segments: ss.Segments, Appends: ss.Appends, Fsyncs: ss.Fsyncs,
			LastFsyncSeconds: ss.LastFsync.Seconds(), Error: ss.Err}
	}
	for _, p := range d.peerList() {
		id := p.id
		ps := p.status()
		qs := p.queue.Stats()
		st.Links = append(st.Links, LinkStatus{
			Cluster: id.Cluster, Node: id.Node, Transport: ps.transport, State: ps.state, Since: ps.since,
			RTTSeconds: ps.rtt.Seconds(), Remote: ps.remote, LastError: ps.lastErr,
			QueuedMessages: qs.Messages, QueuedBytes: qs.Bytes, OldestSeconds: qs.OldestAge.Seconds(),
			Sent: qs.Sent, Redelivered: qs.Redelivered, Rejected: qs.Rejected, Discarded: qs.Dropped,
			Duplicates: p.duplicates.Load(), PastGrace: p.pastGrace.Load(), Undeliverable: p.undeliv.Load(), InFlightBytes: p.queue.InFlight(buffer.LaneNormal) + p.queue.InFlight(buffer.LaneHigh) + p.queue.InFlight(buffer.LaneDurable),
		})
		ls := &st.Links[len(st.Links)-1]
		ls.Discovered = p.discovered
		if l := p.currentLink(); l != nil {
			ls.PeerCertificate = certStatus(l.peerCert)
		}
		enq, deq, drain := p.rates.get(qs.Messages)
		ls.EnqueueRate, ls.DequeueRate = round2(enq), round2(deq)
		if !math.IsInf(drain, 1) {
			secs := round2(drain)
			ls.DrainSeconds = &secs
		}
	}
	// Worst first: the most queued, then by name.
	sort.Slice(st.Links, func(i, j int) bool {
		a, b := st.Links[i], st.Links[j]
		if a.QueuedMessages != b.QueuedMessages {
			return a.QueuedMessages > b.QueuedMessages
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		return a.Node < b.Node
	})
	return st
}

func round2(f float64) float64 {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return f
	}
	return math.Round(f*100) / 100
}
