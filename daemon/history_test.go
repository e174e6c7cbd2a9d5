package daemon

import (
	"slices"
	"testing"
	"time"

	"github.com/wandist/wandist/auth"
)

// The ring keeps the newest samples, oldest first, and never more than
// its size.
func TestHistoryRingIsBoundedAndDropsOldest(t *testing.T) {
	r := newHistoryRing(5)
	if got := r.samples(); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	for i := range 3 {
		r.push(backlogSample{messages: i})
	}
	if got := messagesOf(r.samples()); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("after 3 pushes: %v", got)
	}
	for i := 3; i < 12; i++ {
		r.push(backlogSample{messages: i})
	}
	if got := messagesOf(r.samples()); !slices.Equal(got, []int{7, 8, 9, 10, 11}) {
		t.Fatalf("after 12 pushes into 5 slots: %v (want the newest 5, oldest first)", got)
	}
	if len(r.buf) != 5 {
		t.Fatalf("the ring grew to %d slots", len(r.buf))
	}
}

// Each destination keeps at most its size of samples; one no longer
// present is dropped, and its alert state goes with it.
func TestBacklogHistoryBoundedAndCleaned(t *testing.T) {
	h := &backlogHistory{size: 4}
	a, b := auth.PeerID{Cluster: "x", Node: "a"}, auth.PeerID{Cluster: "x", Node: "b"}
	t0 := time.Unix(1000, 0)
	raised := t0.Add(-time.Minute)
	for i := range 10 {
		h.put(t0.Add(time.Duration(i)*time.Second), map[auth.PeerID]destReading{
			a: {messages: i, bytes: int64(10 * i)},
			b: {messages: 100 + i, alertRaised: raised},
		})
	}
	sa := h.snapshot(a)
	if got := messagesOf(sa.samples); !slices.Equal(got, []int{6, 7, 8, 9}) {
		t.Fatalf("a: %v, want the last 4 samples", got)
	}
	if last := sa.samples[3]; !last.at.Equal(t0.Add(9*time.Second)) || last.bytes != 90 {
		t.Fatalf("a's newest sample: %+v", last)
	}
	if !sa.alertRaised.IsZero() {
		t.Fatalf("a has no alert, got one since %v", sa.alertRaised)
	}
	if sb := h.snapshot(b); !sb.alertRaised.Equal(raised) || len(sb.samples) != 4 {
		t.Fatalf("b: %+v", sb)
	}
	// b goes away (a reload removed it, or its node left).
	h.put(t0.Add(10*time.Second), map[auth.PeerID]destReading{a: {messages: 10}})
	if n := h.len(); n != 1 {
		t.Fatalf("%d destinations kept, want 1 (b was removed)", n)
	}
	if sb := h.snapshot(b); len(sb.samples) != 0 || !sb.alertRaised.IsZero() {
		t.Fatalf("b kept after removal: %+v", sb)
	}
	// b coming back starts afresh.
	h.put(t0.Add(11*time.Second), map[auth.PeerID]destReading{a: {messages: 11}, b: {messages: 5}})
	if got := messagesOf(h.snapshot(b).samples); !slices.Equal(got, []int{5}) {
		t.Fatalf("b after its return: %v", got)
	}
	h.put(t0.Add(12*time.Second), nil)
	if n := h.len(); n != 0 {
		t.Fatalf("%d destinations kept with no peers", n)
	}
}

// The janitor records every peer once a second, and drops the record of
// a peer a reload removed.
func TestJanitorRecordsBacklogHistory(t *testing.T) {
	east, _ := pair(t, "mem")
	west := auth.PeerID{Cluster: "west", Node: "west-1"}
	waitHistory(t, east.d, func(h *backlogHistory) bool { return len(h.snapshot(west).samples) >= 2 },
		"two history samples for west/west-1")
	without := *east.d.Config()
	without.Peers = nil
	if err := east.d.Reload(&without); err != nil {
		t.Fatal(err)
	}
	waitHistory(t, east.d, func(h *backlogHistory) bool { return h.len() == 0 },
		"the removed peer's history dropped")
}

// waitHistory polls d's history until ok holds, for up to 20s.
func waitHistory(t *testing.T, d *Daemon, ok func(*backlogHistory) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok(&d.history) {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func messagesOf(s []backlogSample) []int {
	out := make([]int, len(s))
	for i, x := range s {
		out[i] = x.messages
	}
	return out
}
