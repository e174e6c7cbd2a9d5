package auth

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidPeerID is wrapped by errors about malformed cluster or node names.
var ErrInvalidPeerID = errors.New("invalid peer id")

// MaxNameLength is the longest cluster or node name accepted.
const MaxNameLength = 63

// PeerID names a node: the cluster it belongs to and its name within it.
//
// Both names are 1 to MaxNameLength ASCII letters, digits, '.', '-' or '_',
// start and end with a letter or digit and hold no "..". This keeps them
// valid in the wandist://<cluster>/<node> URI of the node's certificate.
type PeerID struct {
	Cluster string
	Node    string
}

// String returns "cluster/node".
func (p PeerID) String() string {
	return p.Cluster + "/" + p.Node
}

// Validate reports whether both names follow the rules given on PeerID.
// The error wraps ErrInvalidPeerID.
func (p PeerID) Validate() error {
	if err := checkName(p.Cluster); err != nil {
		return fmt.Errorf("%w %q: cluster name %s", ErrInvalidPeerID, p.String(), err)
	}
	if err := checkName(p.Node); err != nil {
		return fmt.Errorf("%w %q: node name %s", ErrInvalidPeerID, p.String(), err)
	}
	return nil
}

// ParsePeerID parses the "cluster/node" form written by PeerID.String and
// validates it. Surrounding white space is ignored.
func ParsePeerID(s string) (PeerID, error) {
	s = strings.TrimSpace(s)
	cluster, node, ok := strings.Cut(s, "/")
	if !ok {
		return PeerID{}, fmt.Errorf("%w %q: want the form cluster/node", ErrInvalidPeerID, s)
	}
	id := PeerID{Cluster: cluster, Node: node}
	if err := id.Validate(); err != nil {
		return PeerID{}, err
	}
	return id, nil
}

// checkName returns what is wrong with one name, worded to follow
// "cluster name" or "node name".
func checkName(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > MaxNameLength {
		return fmt.Errorf("is %d bytes long, the limit is %d", len(s), MaxNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '.' && c != '-' && c != '_' {
			return fmt.Errorf("%q has %q at offset %d; only ASCII letters, digits, '.', '-' and '_' are allowed", s, c, i)
		}
	}
	if !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return fmt.Errorf("%q must start and end with a letter or digit", s)
	}
	if strings.Contains(s, "..") {
		return fmt.Errorf("%q must not contain \"..\"", s)
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
