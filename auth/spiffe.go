package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// SPIFFEScheme is the scheme of the URI SAN naming a node in a certificate
// issued by its cluster's CA: spiffe://<trust domain>/wandist/<cluster>/<node>.
const SPIFFEScheme = "spiffe"

// DefaultTrustDomain is the trust domain used when none is configured.
const DefaultTrustDomain = "wandist"

// spiffePathPrefix starts the path of every wandist SPIFFE ID.
const spiffePathPrefix = "/wandist/"

// ErrInvalidTrustDomain is wrapped by errors about malformed trust domains.
var ErrInvalidTrustDomain = errors.New("invalid SPIFFE trust domain")

// ValidateTrustDomain reports whether td is a valid SPIFFE trust domain:
// 1 to 255 lower-case ASCII letters, digits, '.', '-' or '_'. The error
// wraps ErrInvalidTrustDomain.
func ValidateTrustDomain(td string) error {
	if td == "" {
		return fmt.Errorf("%w: empty", ErrInvalidTrustDomain)
	}
	if len(td) > 255 {
		return fmt.Errorf("%w: %d bytes long, the limit is 255", ErrInvalidTrustDomain, len(td))
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("%w %q: %q at offset %d; only lower-case ASCII letters, digits, '.', '-' and '_' are allowed",
				ErrInvalidTrustDomain, td, c, i)
		}
	}
	return nil
}

// SPIFFEID returns the URI spiffe://<td>/wandist/<cluster>/<node> naming p
// in the trust domain td.
func SPIFFEID(td string, p PeerID) *url.URL {
	return &url.URL{Scheme: SPIFFEScheme, Host: td, Path: spiffePathPrefix + p.Cluster + "/" + p.Node}
}

// peerFromSPIFFE reads the trust domain and PeerID in
// spiffe://<td>/wandist/<cluster>/<node>.
func peerFromSPIFFE(u *url.URL) (string, PeerID, error) {
	if u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" ||
		u.ForceQuery || u.RawPath != "" {
		return "", PeerID{}, errors.New("want exactly spiffe://<trust domain>/wandist/<cluster>/<node>")
	}
	if err := ValidateTrustDomain(u.Host); err != nil {
		return "", PeerID{}, err
	}
	rest, ok := strings.CutPrefix(u.Path, spiffePathPrefix)
	if !ok {
		return "", PeerID{}, fmt.Errorf("path %q does not start with %s", u.Path, spiffePathPrefix)
	}
	cluster, node, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(node, "/") {
		return "", PeerID{}, fmt.Errorf("path %q must be %s<cluster>/<node>", u.Path, spiffePathPrefix)
	}
	id := PeerID{Cluster: cluster, Node: node}
	if err := id.Validate(); err != nil {
		return "", PeerID{}, err
	}
	return u.Host, id, nil
}
