package daemon

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
)

// testCA makes a CA for cluster valid for a year.
func testCA(t *testing.T, cluster string) *auth.CA {
	t.Helper()
	ca, err := auth.NewCA("", cluster, 365*24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// certify gives n a certificate of ca valid for validity (written to a
// file set as its certificate) and trusts ca for n's own cluster.
func certify(t *testing.T, n *node, ca *auth.CA, validity time.Duration) *x509.Certificate {
	t.Helper()
	pemData, err := ca.Issue(auth.PeerID{Cluster: n.cfg.Cluster, Node: n.cfg.Node}, n.pub(), validity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), n.cfg.Node+".crt")
	if err := os.WriteFile(path, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	n.cfg.Certificate = path
	n.cfg.Trust.CAs = []*x509.Certificate{ca.Cert}
	certs, err := auth.ParseCertificatesPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// trustRemote makes n trust cas for the remote cluster.
func trustRemote(n *node, cluster string, cas ...*x509.Certificate) {
	n.cfg.Remotes = append(n.cfg.Remotes, configs.Remote{Cluster: cluster, Seeds: []string{"127.0.0.1:1"}, CAs: cas})
}

// unpinned is peerOf without the pinned key.
func unpinned(other *node, tr, addr, mode string) configs.Peer {
	p := peerOf(other, tr, addr, mode)
	p.PublicKeys = nil
	return p
}

// caPair starts east (accepting) and west (dialling) with certificates of
// their clusters' CAs and no pinned keys; east trusts eastTrusts for west
// (west's real CA if nil). It does not wait for the link.
func caPair(t *testing.T, tr string, eastTrusts *x509.Certificate, setup func(east, west *node)) (east, west *node, westCert *x509.Certificate) {
	t.Helper()
	eastCA, westCA := testCA(t, "east"), testCA(t, "west")
	east = newNode(t, tr, "east", "east-1")
	west = newNode(t, tr, "west", "west-1")
	certify(t, east, eastCA, 90*24*time.Hour)
	westCert = certify(t, west, westCA, 90*24*time.Hour)
	if eastTrusts == nil {
		eastTrusts = westCA.Cert
	}
	trustRemote(east, "west", eastTrusts)
	trustRemote(west, "east", eastCA.Cert)
	if setup != nil {
		setup(east, west)
	}
	east.cfg.Peers = []configs.Peer{unpinned(west, tr, "", "accept")}
	east.start()
	west.cfg.Peers = []configs.Peer{unpinned(east, tr, east.addr(tr), "connect")}
	west.start()
	return east, west, westCert
}

func TestCALinkWithoutPinnedKeys(t *testing.T) {
	east, west, westCert := caPair(t, "mem", nil, nil)
	waitLink(t, west.d, "east", "east-1")
	waitLink(t, east.d, "west", "west-1")
	st := east.d.Status()
	if st.Certificate == nil || !st.Certificate.CA || st.Certificate.NotAfter.IsZero() {
		t.Fatalf("status certificate = %+v", st.Certificate)
	}
	pc := st.Links[0].PeerCertificate
	if pc == nil || !pc.CA || !pc.NotAfter.Equal(westCert.NotAfter.UTC()) {
		t.Fatalf("peer certificate = %+v, want west's, expiring %v", pc, westCert.NotAfter)
	}
	mb := subscribe(t, west, "g", east)
	c := connect(t, east)
	sendAsync(t, c, client.Target{Group: "g"}, []byte("0"))
	receiveSeq(t, mb, 1, 10*time.Second)
}

func TestCAOfAnotherClusterRefused(t *testing.T) {
	north := testCA(t, "north")
	east, west, _ := caPair(t, "mem", north.Cert, nil)
	untrusted := east.d.metrics.handshakeRejects.WithLabelValues(string(auth.ReasonUntrustedCA))
	waitUntil(t, 10*time.Second, func() bool { return testutil.ToFloat64(untrusted) >= 2 },
		func() string { return "east did not refuse west's certificate twice as untrusted_ca" })
	if east.d.peer("west", "west-1").currentLink() != nil || west.d.peer("east", "east-1").currentLink() != nil {
		t.Fatal("a link came up with a certificate of a CA not trusted for its cluster")
	}
}

func TestCertificateOfAnotherKeyRefusedAtNew(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	certify(t, n, testCA(t, "east"), time.Hour)
	n.opts.Key = newKey(t)
	_, err := New(n.cfg, n.opts)
	if err == nil || !strings.Contains(err.Error(), "not for this node's key") {
		t.Fatalf("New with a certificate of another key: %v", err)
	}
}

func TestRevocationByReloadClosesLink(t *testing.T) {
	east, west, _ := caPair(t, "mem", nil, nil)
	waitLink(t, east.d, "west", "west-1")
	revoked := filepath.Join(t.TempDir(), "revoked")
	if err := os.WriteFile(revoked, []byte("# west-1, compromised\n"+auth.FormatPublicKey(west.pub())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := *east.d.Config()
	cfg.Trust.RevokedFile = revoked
	if err := east.d.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	closed := east.d.metrics.linksClosed.WithLabelValues(closeRevoked)
	if got := testutil.ToFloat64(closed); got != 1 {
		t.Fatalf("links closed as revoked = %v, want 1", got)
	}
	rejected := east.d.metrics.handshakeRejects.WithLabelValues(string(auth.ReasonRevoked))
	waitUntil(t, 10*time.Second, func() bool { return testutil.ToFloat64(rejected) >= 2 },
		func() string { return "west's redials were not refused as revoked" })
	if east.d.peer("west", "west-1").currentLink() != nil {
		t.Fatal("the revoked peer relinked")
	}
}

// metricValue returns the value of the gauge name with the labels, or -1.
func certGauge(t *testing.T, d *Daemon, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := d.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if certHasLabels(m, labels) {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

func certHasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func TestCertificateExpiryGaugesAndJanitor(t *testing.T) {
	var skew atomic.Int64
	east, _, westCert := caPair(t, "mem", nil, func(east, _ *node) {
		east.opts.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	waitLink(t, east.d, "west", "west-1")
	node := map[string]string{"kind": "node", "cluster": "east"}
	nodeCert := east.d.nodeCert
	if got := certGauge(t, east.d, "wandist_certificate_expiry_timestamp_seconds", node); got != float64(nodeCert.NotAfter.Unix()) {
		t.Fatalf("node expiry gauge = %v, want %d", got, nodeCert.NotAfter.Unix())
	}
	ca := map[string]string{"kind": "ca", "cluster": "west"}
	if got := certGauge(t, east.d, "wandist_certificate_expiry_timestamp_seconds", ca); got != float64(east.d.Config().Remotes[0].CAs[0].NotAfter.Unix()) {
		t.Fatalf("west CA expiry gauge = %v", got)
	}
	if got := certGauge(t, east.d, "wandist_certificate_expiring", node); got != 0 {
		t.Fatalf("expiring = %v 90 days before expiry (warning 720h)", got)
	}
	// 61 days on: within the 30 days of trust.expiry_warning.
	skew.Store(int64(61 * 24 * time.Hour))
	if got := certGauge(t, east.d, "wandist_certificate_expiring", node); got != 1 {
		t.Fatalf("expiring = %v 29 days before expiry", got)
	}
	// Past west's expiry: east's janitor closes the link, and west's
	// redials with the expired certificate are refused.
	skew.Store(int64(time.Until(westCert.NotAfter) + time.Hour))
	closed := east.d.metrics.linksClosed.WithLabelValues(closeExpired)
	waitUntil(t, 10*time.Second, func() bool { return testutil.ToFloat64(closed) >= 1 },
		func() string { return "the link of an expired peer certificate was not closed" })
	expired := east.d.metrics.handshakeRejects.WithLabelValues(string(auth.ReasonExpired))
	waitUntil(t, 10*time.Second, func() bool { return testutil.ToFloat64(expired) >= 1 },
		func() string { return "west's redial with an expired certificate was not refused" })
	if east.d.peer("west", "west-1").currentLink() != nil {
		t.Fatal("a peer with an expired certificate relinked")
	}
}
