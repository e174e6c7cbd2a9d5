package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newIdentity returns an identity with a fresh key.
func newIdentity(t *testing.T, cluster, node string) Identity {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Identity{ID: PeerID{Cluster: cluster, Node: node}, Key: key}
}
