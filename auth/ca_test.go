package auth

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const day = 24 * time.Hour

func newCA(t testing.TB, td, cluster string) *CA {
	t.Helper()
	ca, err := NewCA(td, cluster, 365*day, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issued returns a fresh identity for cluster/node holding a certificate of
// ca, valid for validity from now.
func issued(t testing.TB, ca *CA, cluster, node string, validity time.Duration) Identity {
	t.Helper()
	id := newIdentity(t.(*testing.T), cluster, node)
	pemData, err := ca.Issue(id.ID, id.Public(), validity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertificatesPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	id.Chain = ChainDER(certs)
	return id
}

// caLink is a server west/west-1 and a client east/east-1, each with a
// certificate of its cluster's CA and each trusting the other's CA, with no
// pins.
type caLink struct {
	westCA, eastCA *CA
	server, client Identity
	serverPins     *PinSet
	clientPins     *PinSet
	serverRejects  rejections
	clientRejects  rejections
}

func newCALink(t *testing.T) *caLink {
	l := &caLink{westCA: newCA(t, "", "west"), eastCA: newCA(t, "", "east"),
		serverPins: NewPinSet(), clientPins: NewPinSet()}
	l.server = issued(t, l.westCA, "west", "west-1", 30*day)
	l.client = issued(t, l.eastCA, "east", "east-1", 30*day)
	l.serverPins.SetAnchors("east", []*x509.Certificate{l.eastCA.Cert})
	l.clientPins.SetAnchors("west", []*x509.Certificate{l.westCA.Cert})
	return l
}

func (l *caLink) run(t *testing.T, client Identity) (result, result) {
	t.Helper()
	scfg, err := ServerTLSConfig(l.server, l.serverPins, testALPN, l.serverRejects.add)
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := ClientTLSConfig(client, l.clientPins, l.server.ID, testALPN, l.clientRejects.add)
	if err != nil {
		t.Fatal(err)
	}
	return handshake(t, scfg, ccfg)
}

func TestCAHandshakeSuccess(t *testing.T) {
	l := newCALink(t)
	s, c := l.run(t, l.client)
	if s.err != nil || c.err != nil {
		t.Fatalf("handshake failed: server %v, client %v", s.err, c.err)
	}
	id, key, err := PeerFromConnectionState(s.state)
	if err != nil || id != l.client.ID || !key.Equal(l.client.Public()) {
		t.Fatalf("server sees %v, %v", id, err)
	}
	if _, td, _, err := PeerFromCertificateWithDomain(s.state.PeerCertificates[0]); err != nil || td != DefaultTrustDomain {
		t.Fatalf("trust domain %q, %v; want %q", td, err, DefaultTrustDomain)
	}
}

func TestCAOtherClustersCARefused(t *testing.T) {
	l := newCALink(t)
	l.serverPins.SetAnchors("west", []*x509.Certificate{l.westCA.Cert})
	// The CA of west signs a certificate naming east/east-1: the server
	// trusts west's CA, but only for west.
	rogue := *l.westCA
	rogue.Cluster = "east"
	forged := issued(t, &rogue, "east", "east-1", day)
	s, _ := l.run(t, forged)
	rej := wantReason(t, s.err, ReasonUntrustedCA)
	if !strings.Contains(rej.Detail, "west wandist CA") {
		t.Fatalf("detail %q does not name the issuer", rej.Detail)
	}
}

func TestCAIssueRefusesOtherCluster(t *testing.T) {
	ca := newCA(t, "", "west")
	id := newIdentity(t, "east", "east-1")
	if _, err := ca.Issue(id.ID, id.Public(), day, time.Now()); !errors.Is(err, ErrInvalidCA) {
		t.Fatalf("Issue for another cluster: %v, want ErrInvalidCA", err)
	}
}

func TestCAExpired(t *testing.T) {
	l := newCALink(t)
	l.serverPins.SetClock(func() time.Time { return time.Now().Add(31 * day) })
	s, _ := l.run(t, l.client)
	rej := wantReason(t, s.err, ReasonExpired)
	if !strings.Contains(rej.Detail, "serial") || !strings.Contains(rej.Detail, "east-1.east") {
		t.Fatalf("detail %q does not name the subject and serial", rej.Detail)
	}
}

func TestCAExpiredCA(t *testing.T) {
	l := newCALink(t)
	short, err := NewCA("", "east", day, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.serverPins.SetAnchors("east", []*x509.Certificate{short.Cert})
	client := issued(t, short, "east", "east-1", 30*day) // cut at the CA's expiry
	if got := client.mustLeaf(t).NotAfter; !got.Equal(short.Cert.NotAfter) {
		t.Fatalf("leaf NotAfter %v, want the CA's %v", got, short.Cert.NotAfter)
	}
	l.serverPins.SetClock(func() time.Time { return time.Now().Add(2 * day) })
	s, _ := l.run(t, client)
	wantReason(t, s.err, ReasonExpired)
}

func (id Identity) mustLeaf(t *testing.T) *x509.Certificate {
	c, err := x509.ParseCertificate(id.Chain[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCAWrongTrustDomain(t *testing.T) {
	l := newCALink(t)
	other := newCA(t, "example.org", "east")
	l.serverPins.SetAnchors("east", []*x509.Certificate{l.eastCA.Cert, other.Cert})
	s, _ := l.run(t, issued(t, other, "east", "east-1", day))
	wantReason(t, s.err, ReasonWrongTrustDomain)
	// The same chain passes where example.org is the trust domain.
	l.serverPins.SetTrustDomain("example.org")
	if s, c := l.run(t, issued(t, other, "east", "east-1", day)); s.err != nil || c.err != nil {
		t.Fatalf("in its own trust domain: server %v, client %v", s.err, c.err)
	}
}

func TestCAUnknownCluster(t *testing.T) {
	l := newCALink(t)
	l.serverPins.SetAnchors("east", nil)
	s, _ := l.run(t, l.client)
	wantReason(t, s.err, ReasonUnknownPeer)
}

func TestCASelfSignedNeedsPin(t *testing.T) {
	l := newCALink(t)
	self := newIdentity(t, "east", "east-1") // no chain: self-signed wandist://
	s, _ := l.run(t, self)
	wantReason(t, s.err, ReasonUnknownPeer)
	l.serverPins.Set(self.ID, []ed25519.PublicKey{self.Public()})
	if s, c := l.run(t, self); s.err != nil || c.err != nil {
		t.Fatalf("pinned self-signed: server %v, client %v", s.err, c.err)
	}
	// A pinned name is checked by its pins, not by the CA.
	s, _ = l.run(t, l.client)
	wantReason(t, s.err, ReasonUnpinnedKey)
}

func TestCARevokedKeyEvenIfPinned(t *testing.T) {
	l := newLink(t)
	l.serverPins.SetRevoked([]ed25519.PublicKey{l.client.Public()}, nil)
	s, _ := handshake(t, l.serverConfig(t), l.clientConfig(t, l.client, l.server.ID))
	wantReason(t, s.err, ReasonRevoked)
	l.serverPins.SetRevoked(nil, nil)
	if s, c := handshake(t, l.serverConfig(t), l.clientConfig(t, l.client, l.server.ID)); s.err != nil || c.err != nil {
		t.Fatalf("after unrevoking: server %v, client %v", s.err, c.err)
	}
}

func TestCARevokedSerial(t *testing.T) {
	l := newCALink(t)
	leaf := l.client.mustLeaf(t)
	l.serverPins.SetRevoked(nil, []*big.Int{leaf.SerialNumber})
	s, _ := l.run(t, l.client)
	rej := wantReason(t, s.err, ReasonRevoked)
	if rej.Claimed != l.client.ID {
		t.Fatalf("Claimed %v, want %v", rej.Claimed, l.client.ID)
	}
	// A chain holding a revoked CA's certificate is refused too.
	l.serverPins.SetRevoked(nil, []*big.Int{l.eastCA.Cert.SerialNumber})
	withCA := l.client
	withCA.Chain = append(withCA.Chain[:1:1], l.eastCA.Cert.Raw)
	s, _ = l.run(t, withCA)
	wantReason(t, s.err, ReasonRevoked)
	if err := l.serverPins.Revoked([]*x509.Certificate{leaf}); err != nil {
		t.Fatalf("Revoked(leaf) = %v after the list changed", err)
	}
}

func TestCARotationTwoAnchors(t *testing.T) {
	l := newCALink(t)
	next := newCA(t, "", "east")
	l.serverPins.SetAnchors("east", []*x509.Certificate{l.eastCA.Cert, next.Cert})
	renewed := issued(t, next, "east", "east-1", day)
	for _, id := range []Identity{l.client, renewed} {
		if s, c := l.run(t, id); s.err != nil || c.err != nil {
			t.Fatalf("during rotation: server %v, client %v", s.err, c.err)
		}
	}
	l.serverPins.ReplaceAnchors("", map[string][]*x509.Certificate{"east": {next.Cert}})
	s, _ := l.run(t, l.client)
	wantReason(t, s.err, ReasonUntrustedCA)
	if s, c := l.run(t, renewed); s.err != nil || c.err != nil {
		t.Fatalf("after rotation: server %v, client %v", s.err, c.err)
	}
}

func TestCAClientVerifiesServer(t *testing.T) {
	l := newCALink(t)
	l.clientPins.SetAnchors("west", []*x509.Certificate{newCA(t, "", "west").Cert})
	_, c := l.run(t, l.client)
	wantReason(t, c.err, ReasonUntrustedCA)
}

func TestCAUsageChecked(t *testing.T) {
	l := newCALink(t)
	// A client presenting a certificate for server auth only.
	id := newIdentity(t, "east", "east-1")
	serial, _ := randomSerial()
	tmpl := &x509.Certificate{SerialNumber: serial, URIs: []*url.URL{SPIFFEID(DefaultTrustDomain, id.ID)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(day),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(nil, tmpl, l.eastCA.Cert, id.Public(), l.eastCA.Key)
	if err != nil {
		t.Fatal(err)
	}
	id.Chain = [][]byte{der}
	s, _ := l.run(t, id)
	wantReason(t, s.err, ReasonUntrustedCA)
}

func TestClientTLSConfigCluster(t *testing.T) {
	l := newCALink(t)
	scfg, err := ServerTLSConfig(l.server, l.serverPins, testALPN, nil)
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := ClientTLSConfigCluster(l.client, l.clientPins, "west", testALPN, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, c := handshake(t, scfg, ccfg); s.err != nil || c.err != nil {
		t.Fatalf("any node of west: server %v, client %v", s.err, c.err)
	}
	l.clientPins.SetAnchors("north", []*x509.Certificate{l.westCA.Cert})
	ccfg, err = ClientTLSConfigCluster(l.client, l.clientPins, "north", testALPN, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, c := handshake(t, scfg, ccfg)
	wantReason(t, c.err, ReasonWrongPeer)
	if _, err := ClientTLSConfigCluster(l.client, l.clientPins, "", testALPN, nil); !errors.Is(err, ErrInvalidTLSConfig) {
		t.Fatalf("empty cluster: %v", err)
	}
}

func TestIdentityChainChecked(t *testing.T) {
	ca := newCA(t, "", "east")
	good := issued(t, ca, "east", "east-1", day)
	if c, err := good.Certificate(); err != nil || len(c.Certificate) != 1 || c.Leaf == nil {
		t.Fatalf("Certificate with chain: %v", err)
	}
	otherKey := good
	otherKey.Key = newIdentity(t, "east", "east-1").Key
	if _, err := otherKey.Certificate(); !errors.Is(err, ErrInvalidCertificate) || !strings.Contains(err.Error(), "not for this node's key") {
		t.Fatalf("chain of another key: %v", err)
	}
	otherName := good
	otherName.ID.Node = "east-2"
	if _, err := otherName.Certificate(); !errors.Is(err, ErrInvalidCertificate) || !strings.Contains(err.Error(), "names east/east-1") {
		t.Fatalf("chain of another name: %v", err)
	}
	garbage := good
	garbage.Chain = [][]byte{{1, 2, 3}}
	if _, err := garbage.Certificate(); !errors.Is(err, ErrInvalidCertificate) {
		t.Fatalf("garbage chain: %v", err)
	}
}

func TestCASaveLoad(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "example.org", "east")
	crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := ca.Save(crt, key); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if err := ca.Save(crt, key); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second Save: %v, want ErrKeyExists", err)
	}
	got, err := LoadCA(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cluster != "east" || got.TrustDomain != "example.org" || !got.Cert.Equal(ca.Cert) || !got.Key.Equal(ca.Key) {
		t.Fatalf("loaded %+v", got)
	}
	if !got.Cert.IsCA || len(got.Cert.PermittedURIDomains) != 1 {
		t.Fatal("CA certificate has no basic constraints or name constraints")
	}
	other := newCA(t, "", "east")
	if err := other.Save(filepath.Join(dir, "o.crt"), filepath.Join(dir, "o.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(crt, filepath.Join(dir, "o.key")); !errors.Is(err, ErrInvalidCA) {
		t.Fatalf("CA with another key: %v", err)
	}
}

func TestLoadCertificateFile(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "", "east")
	id := issued(t, ca, "east", "east-1", day)
	leafPEM := EncodeCertificatesPEM(id.mustLeaf(t))
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certs, err := LoadCertificateFile(write("chain.pem", append(leafPEM, EncodeCertificatesPEM(ca.Cert)...)))
	if err != nil || len(certs) != 2 || !certs[1].Equal(ca.Cert) {
		t.Fatalf("chain: %d certs, %v", len(certs), err)
	}
	if _, err := LoadCertificateFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	keyPEM, _ := os.ReadFile(func() string {
		p := filepath.Join(dir, "k")
		if _, err := GenerateKeyFile(p, false); err != nil {
			t.Fatal(err)
		}
		return p
	}())
	for name, data := range map[string][]byte{
		"empty":       nil,
		"text":        []byte("hello"),
		"key":         keyPEM,
		"other block": []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
		"trailing":    append(append([]byte{}, leafPEM...), "junk"...),
		"leading":     append([]byte("junk\n"), leafPEM...),
		"bad der":     []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
	} {
		p := write(strings.ReplaceAll(name, " ", "_"), data)
		_, err := LoadCertificateFile(p)
		if !errors.Is(err, ErrInvalidCertificate) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want ErrInvalidCertificate naming the file", name, err)
		}
		if name == "key" && strings.Contains(err.Error(), "MC4C") {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
}

func TestNewCAArguments(t *testing.T) {
	now := time.Now()
	if _, err := NewCA("Bad_TD!", "east", day, now); !errors.Is(err, ErrInvalidTrustDomain) {
		t.Errorf("bad trust domain: %v", err)
	}
	if _, err := NewCA("", "", day, now); !errors.Is(err, ErrInvalidCA) {
		t.Errorf("no cluster: %v", err)
	}
	if _, err := NewCA("", "east", 0, now); !errors.Is(err, ErrInvalidCA) {
		t.Errorf("no validity: %v", err)
	}
}

func TestPeerFromSPIFFE(t *testing.T) {
	for _, bad := range []string{"spiffe://wandist/other/east/e1", "spiffe://wandist/wandist/east", "spiffe://wandist/wandist/east/e1/x",
		"spiffe://Wandist/wandist/east/e1", "spiffe://wandist:1/wandist/east/e1", "spiffe://wandist/wandist/east/e1?q"} {
		u, err := url.Parse(bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := peerFromSPIFFE(u); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	u := SPIFFEID("example.org", PeerID{Cluster: "east", Node: "e1"})
	td, id, err := peerFromSPIFFE(u)
	if err != nil || td != "example.org" || id != (PeerID{Cluster: "east", Node: "e1"}) || u.String() != "spiffe://example.org/wandist/east/e1" {
		t.Fatalf("%s: %q %v %v", u, td, id, err)
	}
}
