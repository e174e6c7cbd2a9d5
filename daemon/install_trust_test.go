package daemon

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
)

// A handshake that ran while a reload unpinned the peer's key must not
// install its link: the reload found no link to close, so the check under
// the peer's lock at install is what refuses it.
func TestInstallRechecksPinnedKey(t *testing.T) {
	east := newNode(t, "mem", "east", "east-1")
	west := newNode(t, "mem", "west", "west-1")
	east.cfg.Peers = []configs.Peer{peerOf(west, "mem", "", "accept")}
	east.start()
	p := east.d.peer("west", "west-1")
	if p == nil {
		t.Fatal("east has no peer west/west-1")
	}
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		key     ed25519.PublicKey
		refused bool
	}{{"the pinned key", west.pub(), false}, {"a key no longer pinned", other, true}} {
		l := &link{p: p, peerKey: c.key}
		p.mu.Lock()
		err := p.stillTrustedLocked(l)
		p.mu.Unlock()
		if got := err != nil; got != c.refused {
			t.Fatalf("%s: stillTrustedLocked = %v, want refused %v", c.name, err, c.refused)
		}
		if c.refused && !errors.Is(err, auth.ErrRejected) {
			t.Fatalf("%s: %v, want auth.ErrRejected", c.name, err)
		}
	}
}
