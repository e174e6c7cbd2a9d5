package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// wantReason checks that err is a *RejectError with the given reason.
func wantReason(t *testing.T, err error, want Reason) *RejectError {
	t.Helper()
	var rej *RejectError
	if !errors.As(err, &rej) {
		t.Fatalf("error %v is not a *RejectError (want reason %s)", err, want)
	}
	if rej.Reason != want {
		t.Fatalf("reason = %s, want %s (error: %v)", rej.Reason, want, err)
	}
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("errors.Is(%v, ErrRejected) = false", err)
	}
	return rej
}

func TestPinSetCheck(t *testing.T) {
	e1 := newIdentity(t, "east", "east-1")
	e2 := newIdentity(t, "east", "east-2")
	w1 := newIdentity(t, "west", "east-1") // same node name, other cluster
	stranger := newIdentity(t, "east", "east-1")

	pins := NewPinSet()
	pins.Set(e1.ID, []ed25519.PublicKey{e1.Public()})
	pins.Set(e2.ID, []ed25519.PublicKey{e2.Public()})
	pins.Set(w1.ID, []ed25519.PublicKey{w1.Public()})

	for _, id := range []Identity{e1, e2, w1} {
		if err := pins.Check(id.ID, id.Public()); err != nil {
			t.Fatalf("Check(%v, own key) = %v, want nil", id.ID, err)
		}
	}

	rej := wantReason(t, pins.Check(e1.ID, stranger.Public()), ReasonUnpinnedKey)
	if rej.Claimed != e1.ID || rej.Key != FormatPublicKey(stranger.Public()) {
		t.Fatalf("RejectError = %+v, want Claimed %v and the stranger's key", rej, e1.ID)
	}
	wantReason(t, pins.Check(PeerID{Cluster: "north", Node: "n1"}, stranger.Public()), ReasonUnknownPeer)

	// A pinned key claiming another node's name, in the same or another
	// cluster, or a name that is not pinned at all.
	wantReason(t, pins.Check(e2.ID, e1.Public()), ReasonNameMismatch)
	wantReason(t, pins.Check(w1.ID, e1.Public()), ReasonNameMismatch)
	wantReason(t, pins.Check(PeerID{Cluster: "east", Node: "east-9"}, e1.Public()), ReasonNameMismatch)

	pins.Remove(e1.ID)
	wantReason(t, pins.Check(e1.ID, e1.Public()), ReasonUnknownPeer)
	if err := pins.Check(e2.ID, e2.Public()); err != nil {
		t.Fatalf("Remove(%v) affected %v: %v", e1.ID, e2.ID, err)
	}
	if err := pins.Check(e2.ID, nil); err == nil {
		t.Fatal("Check with a nil key passed")
	}
}

func TestPinSetRotation(t *testing.T) {
	old := newIdentity(t, "east", "east-1")
	next := newIdentity(t, "east", "east-1")
	pins := NewPinSet()
	pins.Set(old.ID, []ed25519.PublicKey{old.Public(), next.Public()})
	for _, k := range []ed25519.PublicKey{old.Public(), next.Public()} {
		if err := pins.Check(old.ID, k); err != nil {
			t.Fatalf("during rotation, Check = %v, want both keys accepted", err)
		}
	}
	if got := pins.Keys(old.ID); len(got) != 2 {
		t.Fatalf("Keys = %d keys, want 2", len(got))
	}

	pins.Set(old.ID, []ed25519.PublicKey{next.Public()})
	wantReason(t, pins.Check(old.ID, old.Public()), ReasonUnpinnedKey)
	if err := pins.Check(old.ID, next.Public()); err != nil {
		t.Fatalf("after rotation, new key: %v", err)
	}
	if got := pins.Keys(old.ID); len(got) != 1 || !got[0].Equal(next.Public()) {
		t.Fatalf("Keys = %x, want only the new key", got)
	}
}

func TestPinSetCopies(t *testing.T) {
	id := newIdentity(t, "east", "east-1")
	key := append(ed25519.PublicKey(nil), id.Public()...)
	keys := []ed25519.PublicKey{key}
	pins := NewPinSet()
	pins.Set(id.ID, keys)
	key[0] ^= 0xff
	if err := pins.Check(id.ID, id.Public()); err != nil {
		t.Fatalf("changing the slice given to Set changed the pins: %v", err)
	}
	got := pins.Keys(id.ID)
	got[0][0] ^= 0xff
	if err := pins.Check(id.ID, id.Public()); err != nil {
		t.Fatalf("changing the slice Keys returned changed the pins: %v", err)
	}
}

func TestPinSetSetEmptyAndReplace(t *testing.T) {
	a := newIdentity(t, "east", "east-1")
	b := newIdentity(t, "west", "west-1")
	var pins PinSet // zero value is usable
	wantReason(t, pins.Check(a.ID, a.Public()), ReasonUnknownPeer)
	pins.Set(a.ID, []ed25519.PublicKey{a.Public(), a.Public(), ed25519.PublicKey{1, 2}})
	if got := pins.Keys(a.ID); len(got) != 1 {
		t.Fatalf("Keys = %d keys, want the duplicate and short keys dropped", len(got))
	}
	pins.Set(a.ID, nil)
	wantReason(t, pins.Check(a.ID, a.Public()), ReasonUnknownPeer)
	if peers := pins.Peers(); len(peers) != 0 {
		t.Fatalf("Peers = %v after Set(id, nil), want none", peers)
	}

	pins.Set(a.ID, []ed25519.PublicKey{a.Public()})
	pins.Replace(map[PeerID][]ed25519.PublicKey{b.ID: {b.Public()}})
	wantReason(t, pins.Check(a.ID, a.Public()), ReasonUnknownPeer)
	if err := pins.Check(b.ID, b.Public()); err != nil {
		t.Fatalf("after Replace: %v", err)
	}
	if peers := pins.Peers(); len(peers) != 1 || peers[0] != b.ID {
		t.Fatalf("Peers = %v, want [%v]", peers, b.ID)
	}
}

func TestPinSetConcurrent(t *testing.T) {
	pins := NewPinSet()
	ids := make([]Identity, 4)
	for i := range ids {
		ids[i] = newIdentity(t, "east", fmt.Sprintf("east-%d", i))
	}
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			for range 200 {
				pins.Set(ids[i].ID, []ed25519.PublicKey{ids[i].Public(), ids[(i+1)%len(ids)].Public()})
				pins.Check(ids[i].ID, ids[i].Public())
				pins.Keys(ids[(i+1)%len(ids)].ID)
				pins.Remove(ids[i].ID)
			}
		})
	}
	wg.Wait()
	if peers := pins.Peers(); len(peers) != 0 {
		t.Fatalf("Peers = %v after every peer was removed", peers)
	}
}

func TestRejectErrorText(t *testing.T) {
	id := newIdentity(t, "east", "east-1")
	pins := NewPinSet()
	pins.Set(id.ID, []ed25519.PublicKey{newIdentity(t, "east", "east-1").Public()})
	err := pins.Check(id.ID, id.Public())
	want := "peer rejected (unpinned_key): east/east-1 presented key " + FormatPublicKey(id.Public()) + " which is not pinned for it"
	if err == nil || err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err, want)
	}
	if got := (&RejectError{Reason: ReasonWrongPeer, Claimed: id.ID}).Error(); got != "peer rejected (wrong_peer): east/east-1" {
		t.Fatalf("Error() without Detail = %q", got)
	}
}
