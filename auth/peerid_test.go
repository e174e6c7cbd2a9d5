package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestPeerIDString(t *testing.T) {
	if got := (PeerID{Cluster: "east", Node: "east-1"}).String(); got != "east/east-1" {
		t.Fatalf("String() = %q, want %q", got, "east/east-1")
	}
}

func TestParsePeerID(t *testing.T) {
	got, err := ParsePeerID(" eu.west/node_2 ")
	if err != nil {
		t.Fatal(err)
	}
	if want := (PeerID{Cluster: "eu.west", Node: "node_2"}); got != want {
		t.Fatalf("ParsePeerID = %+v, want %+v", got, want)
	}
	for _, bad := range []string{
		"", "east", "/east-1", "east/", "east/a/b", "ea st/n1", "east/n1.",
		"-east/n1", "a..b/n1", "east/" + strings.Repeat("n", MaxNameLength+1), "east/ñ",
	} {
		if id, err := ParsePeerID(bad); !errors.Is(err, ErrInvalidPeerID) {
			t.Errorf("ParsePeerID(%q) = %+v, %v; want an error wrapping ErrInvalidPeerID", bad, id, err)
		}
	}
}

func TestPeerIDValidateNamesThePart(t *testing.T) {
	err := PeerID{Cluster: "east", Node: "bad/node"}.Validate()
	if !errors.Is(err, ErrInvalidPeerID) || !strings.Contains(err.Error(), "node name") {
		t.Fatalf("Validate() = %v, want ErrInvalidPeerID about the node name", err)
	}
	err = PeerID{Cluster: "", Node: "n1"}.Validate()
	if !errors.Is(err, ErrInvalidPeerID) || !strings.Contains(err.Error(), "cluster name") {
		t.Fatalf("Validate() = %v, want ErrInvalidPeerID about the cluster name", err)
	}
}
