package groups

import (
	"errors"
	"fmt"
	"sort"
)

// What a node holds of one peer's membership, read whole or in part: a
// gateway forwards its cluster mates' views to nodes of other clusters
// (daemon/gatewaymembers.go), which take them with ApplyIncomingNewer.

// ViewState is a peer's membership as this node holds it.
type ViewState struct {
	Incarnation, Version uint64
	Entries              []Entry // sorted by group, then mailbox
}

// View returns what this node holds of peer's membership; ok is false if
// nothing is held.
func (r *Registry) View(peer NodeID) (s ViewState, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v := r.views[peer]
	if v == nil {
		return ViewState{}, false
	}
	s = ViewState{Incarnation: v.incarnation, Version: v.version, Entries: make([]Entry, 0, v.nMembers)}
	for g, m := range v.members {
		for mb, c := range m {
			s.Entries = append(s.Entries, Entry{Group: g, Mailbox: mb, Count: c, Claim: v.claims[g][mb]})
		}
	}
	sort.Slice(s.Entries, func(i, j int) bool {
		a, b := s.Entries[i], s.Entries[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.Mailbox < b.Mailbox
	})
	return s, true
}

// ViewVersion returns the incarnation and version of the view of peer; ok
// is false if none is held.
func (r *Registry) ViewVersion(peer NodeID) (incarnation, version uint64, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if v := r.views[peer]; v != nil {
		return v.incarnation, v.version, true
	}
	return 0, 0, false
}

// ErrNotNewer is returned by ApplyIncomingNewer for a snapshot older than
// the view held.
var ErrNotNewer = errors.New("groups: snapshot older than the view held")

// ApplyIncomingNewer is ApplyIncoming for a snapshot that may come later
// than newer news of the peer (from another source): one of the same
// incarnation as the view held but of a lower version leaves the view as
// it is, only marked reachable (its source is up and will catch up), and
// returns ErrNotNewer.
func (r *Registry) ApplyIncomingNewer(in *Incoming, incarnation, version uint64) error {
	r.mu.Lock()
	v := r.views[in.peer]
	if v == nil || v.incarnation != incarnation || v.version <= version {
		r.mu.Unlock()
		return r.ApplyIncoming(in, incarnation, version)
	}
	defer r.mu.Unlock()
	r.changedLocked()
	held := v.version
	if !v.reachable {
		v.reachable = true
		r.signalLocked()
	}
	return fmt.Errorf("%w: snapshot of %s version %d, already have %d", ErrNotNewer, in.peer, version, held)
}
