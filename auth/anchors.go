package auth

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"time"
)

// trustState is the part of a PinSet about CAs and revocation. Its maps are
// never changed in place: a change builds new ones.
type trustState struct {
	domain     string                         // "" means DefaultTrustDomain
	pools      map[string]*x509.CertPool      // cluster -> pool of its CA certificates
	anchors    map[string][]*x509.Certificate // cluster -> its CA certificates
	revKeys    map[string]struct{}            // raw Ed25519 key bytes
	revSerials map[string]struct{}            // serial numbers, decimal
	now        func() time.Time               // nil means time.Now
}

// SetTrustDomain sets the SPIFFE trust domain that CA-issued peer
// certificates must name; "" is DefaultTrustDomain.
func (p *PinSet) SetTrustDomain(td string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trust.domain = td
}

// TrustDomain returns the trust domain in force.
func (p *PinSet) TrustDomain() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.trust.domainOrDefault()
}

func (t *trustState) domainOrDefault() string {
	if t.domain == "" {
		return DefaultTrustDomain
	}
	return t.domain
}

// SetAnchors makes cas the trust anchors of cluster, replacing its previous
// ones: any node of cluster whose certificate chains to one of them (and
// names this PinSet's trust domain) is accepted. Two at once allow rotating
// the CA. An empty cas removes the cluster's anchors.
func (p *PinSet) SetAnchors(cluster string, cas []*x509.Certificate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	anchors := maps.Clone(p.trust.anchors)
	if anchors == nil {
		anchors = map[string][]*x509.Certificate{}
	}
	if len(cas) == 0 {
		delete(anchors, cluster)
	} else {
		anchors[cluster] = slices.Clone(cas)
	}
	p.trust.anchors, p.trust.pools = anchors, poolsOf(anchors)
}

// ReplaceAnchors sets the trust domain ("" is DefaultTrustDomain) and swaps
// every cluster's anchors for byCluster, e.g. after reloading the config.
func (p *PinSet) ReplaceAnchors(td string, byCluster map[string][]*x509.Certificate) {
	anchors := map[string][]*x509.Certificate{}
	for c, cas := range byCluster {
		if len(cas) > 0 {
			anchors[c] = slices.Clone(cas)
		}
	}
	pools := poolsOf(anchors)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trust.domain, p.trust.anchors, p.trust.pools = td, anchors, pools
}

func poolsOf(anchors map[string][]*x509.Certificate) map[string]*x509.CertPool {
	pools := make(map[string]*x509.CertPool, len(anchors))
	for c, cas := range anchors {
		pool := x509.NewCertPool()
		for _, ca := range cas {
			pool.AddCert(ca)
		}
		pools[c] = pool
	}
	return pools
}

// Anchors returns the CA certificates trusted for cluster, nil if none.
func (p *PinSet) Anchors(cluster string) []*x509.Certificate {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return slices.Clone(p.trust.anchors[cluster])
}

// SetRevoked replaces the revocation list: a peer presenting one of keys, or
// a certificate (its leaf or any certificate of its chain) with one of
// serials, is refused with ReasonRevoked even if it is pinned.
func (p *PinSet) SetRevoked(keys []ed25519.PublicKey, serials []*big.Int) {
	rk := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		rk[string(k)] = struct{}{}
	}
	rs := make(map[string]struct{}, len(serials))
	for _, s := range serials {
		if s != nil {
			rs[s.String()] = struct{}{}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trust.revKeys, p.trust.revSerials = rk, rs
}

// SetClock sets the clock certificates' validity is checked against; nil
// is time.Now.
func (p *PinSet) SetClock(now func() time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trust.now = now
}

// Revoked returns a *RejectError with ReasonRevoked if the key or serial
// number of any certificate of chain is revoked, else nil.
func (p *PinSet) Revoked(chain []*x509.Certificate) error {
	t := p.snapshot()
	if r := t.revoked(chain); r != nil {
		return r
	}
	return nil
}

func (p *PinSet) snapshot() trustState {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.trust
}

func (t *trustState) revoked(chain []*x509.Certificate) *RejectError {
	for i, c := range chain {
		key, _ := c.PublicKey.(ed25519.PublicKey)
		_, badKey := t.revKeys[string(key)]
		_, badSerial := t.revSerials[c.SerialNumber.String()]
		if !badKey && !badSerial {
			continue
		}
		leafID, _, leafKey, _ := PeerFromCertificateWithDomain(chain[0])
		what := "its key " + FormatPublicKey(key)
		if badSerial {
			what = fmt.Sprintf("serial %x", c.SerialNumber)
		}
		return newReject(ReasonRevoked, leafID, leafKey, fmt.Sprintf(
			"certificate %d of the chain (subject %q, serial %x) is revoked: %s is on the revocation list",
			i, c.Subject.String(), c.SerialNumber, what))
	}
	return nil
}

// CheckChain checks a peer's certificate chain as the TLS verifier does
// (leaf first, as tls.ConnectionState.PeerCertificates holds it) and
// returns the identity it proves. usage is the extended key usage the leaf
// must have for a CA-verified peer: x509.ExtKeyUsageClientAuth for a
// dialer, ServerAuth for an acceptor. Errors are *RejectError values:
//
//   - ReasonRevoked: a revoked key or serial, even for a pinned peer;
//   - a peer whose name or key is pinned: the pin check (Check);
//   - else, if the claimed cluster has anchors: ReasonWrongTrustDomain,
//     ReasonExpired, or ReasonUntrustedCA when the chain does not lead to
//     one of that cluster's CAs (another cluster's CA never vouches for
//     it);
//   - else ReasonUnknownPeer.
func (p *PinSet) CheckChain(chain []*x509.Certificate, usage x509.ExtKeyUsage) (PeerID, ed25519.PublicKey, error) {
	id, key, r := p.checkChain(chain, usage)
	if r != nil {
		return id, key, r
	}
	return id, key, nil
}

func (p *PinSet) checkChain(chain []*x509.Certificate, usage x509.ExtKeyUsage) (PeerID, ed25519.PublicKey, *RejectError) {
	if len(chain) == 0 {
		return PeerID{}, nil, newReject(ReasonNoCertificate, PeerID{}, nil, "peer presented no certificate")
	}
	leaf := chain[0]
	id, td, key, err := PeerFromCertificateWithDomain(leaf)
	if err != nil {
		pub, _ := leaf.PublicKey.(ed25519.PublicKey)
		rej := newReject(ReasonBadCertificate, PeerID{}, pub, err.Error())
		rej.Err = err
		return PeerID{}, nil, rej
	}
	t := p.snapshot()
	if r := t.revoked(chain); r != nil {
		return id, key, r
	}
	if p.pinned(id, key) {
		return id, key, p.check(id, key)
	}
	return id, key, t.verify(id, td, key, chain, usage)
}

// pinned reports whether id has pins or key is pinned for anyone.
func (p *PinSet) pinned(id PeerID, key ed25519.PublicKey) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.byPeer[id]) > 0 || len(p.byKey[string(key)]) > 0
}

// verify checks a chain against the anchors of the claimed cluster.
func (t *trustState) verify(id PeerID, td string, key ed25519.PublicKey, chain []*x509.Certificate, usage x509.ExtKeyUsage) *RejectError {
	leaf := chain[0]
	pool := t.pools[id.Cluster]
	if td == "" || pool == nil {
		why := "no keys are pinned for it"
		if pool == nil {
			why += " and no CA is trusted for cluster " + id.Cluster
		} else {
			why += " and its self-signed certificate is not issued by cluster " + id.Cluster + "'s CA"
		}
		return newReject(ReasonUnknownPeer, id, key, fmt.Sprintf(
			"peer claiming to be %s (key %s) is unknown: %s", id, FormatPublicKey(key), why))
	}
	if want := t.domainOrDefault(); td != want {
		return newReject(ReasonWrongTrustDomain, id, key, fmt.Sprintf(
			"certificate of %s (subject %q, serial %x) is in trust domain %q, want %q",
			id, leaf.Subject.String(), leaf.SerialNumber, td, want))
	}
	now := time.Now()
	if t.now != nil {
		now = t.now()
	}
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return newReject(ReasonExpired, id, key, fmt.Sprintf(
			"certificate of %s (subject %q, serial %x) is valid from %s to %s, not at %s",
			id, leaf.Subject.String(), leaf.SerialNumber, leaf.NotBefore.UTC().Format(time.RFC3339),
			leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{usage}})
	if err == nil {
		return nil
	}
	reason := ReasonUntrustedCA
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		reason = ReasonExpired
	}
	rej := newReject(reason, id, key, fmt.Sprintf(
		"certificate of %s (subject %q, issuer %q, serial %x, expires %s) is not vouched for by a CA of cluster %s: %v",
		id, leaf.Subject.String(), leaf.Issuer.String(), leaf.SerialNumber,
		leaf.NotAfter.UTC().Format(time.RFC3339), id.Cluster, err))
	rej.Err = err
	return rej
}
