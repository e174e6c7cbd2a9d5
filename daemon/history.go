package daemon

import (
	"sync"
	"time"

	"github.com/wandist/wandist/auth"
)

// historyLen is how many backlog samples a destination keeps: one a
// second (the janitor's tick) for the last five minutes.
const historyLen = 300

// backlogSample is a destination's backlog at one janitor tick.
type backlogSample struct {
	at       time.Time
	messages int
	bytes    int64
}

// historyRing keeps the newest cap(buf) samples; pushing into a full ring
// drops the oldest. Not safe for concurrent use: backlogHistory guards it.
type historyRing struct {
	buf  []backlogSample // fixed length once made
	next int             // where the next sample goes
	n    int             // samples held, at most len(buf)
}

func newHistoryRing(size int) *historyRing {
	return &historyRing{buf: make([]backlogSample, size)}
}

func (r *historyRing) push(s backlogSample) {
	r.buf[r.next] = s
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// samples returns the samples held, oldest first, in a new slice.
func (r *historyRing) samples() []backlogSample {
	out := make([]backlogSample, 0, r.n)
	start := (r.next - r.n + len(r.buf)) % len(r.buf)
	for i := range r.n {
		out = append(out, r.buf[(start+i)%len(r.buf)])
	}
	return out
}

// destHistory is one destination's record for the status page.
type destHistory struct {
	ring        *historyRing
	alertRaised time.Time // since when its backlog alert is raised (zero: it is not); from peer.alert
}

// backlogHistory is the recent backlog of every destination, for the
// status page's sparklines, and the backlog alerts raised. The janitor
// records into it once a second; a destination that is no longer a peer
// (removed by a reload, or a discovered node gone) is dropped at the next
// record, so it holds at most historyLen samples per current peer.
type backlogHistory struct {
	mu    sync.Mutex                   // guards dests
	dests map[auth.PeerID]*destHistory // by peer
	size  int                          // samples per destination, historyLen when 0; fixed before the first record
}

// destSnapshot is a copy of one destination's record.
type destSnapshot struct {
	samples     []backlogSample
	alertRaised time.Time
}

// record adds a sample of each peer's buffer and its alert state, and
// drops the destinations not in peers. Called by the janitor only: it
// reads peer.alert, which the janitor owns.
func (h *backlogHistory) record(now time.Time, peers []*peer) {
	readings := make(map[auth.PeerID]destReading, len(peers))
	for _, p := range peers {
		st := p.queue.Stats()
		r := destReading{messages: st.Messages, bytes: st.Bytes}
		if p.alert.raised {
			r.alertRaised = p.alert.over
		}
		readings[p.id] = r
	}
	h.put(now, readings)
}

// destReading is what record reads of one peer at a tick.
type destReading struct {
	messages    int
	bytes       int64
	alertRaised time.Time // zero: no backlog alert raised
}

// put adds a sample for each destination in readings and drops the
// destinations not in it.
func (h *backlogHistory) put(now time.Time, readings map[auth.PeerID]destReading) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dests == nil {
		h.dests = map[auth.PeerID]*destHistory{}
	}
	size := h.size
	if size <= 0 {
		size = historyLen
	}
	for id, r := range readings {
		e := h.dests[id]
		if e == nil {
			e = &destHistory{ring: newHistoryRing(size)}
			h.dests[id] = e
		}
		e.ring.push(backlogSample{at: now, messages: r.messages, bytes: r.bytes})
		e.alertRaised = r.alertRaised
	}
	for id := range h.dests {
		if _, ok := readings[id]; !ok {
			delete(h.dests, id)
		}
	}
}

// snapshot returns a copy of id's record (empty if it has none).
func (h *backlogHistory) snapshot(id auth.PeerID) destSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.dests[id]
	if e == nil {
		return destSnapshot{}
	}
	return destSnapshot{samples: e.ring.samples(), alertRaised: e.alertRaised}
}

// len returns how many destinations have a record.
func (h *backlogHistory) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.dests)
}
