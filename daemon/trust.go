package daemon

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
)

// Reasons of wandist_links_closed_total: an up link closed for its peer's
// certificate.
const (
	closeRevoked = "revoked"
	closeExpired = "certificate_expired"
	closedIdle   = "idle" // topology.go: closeIdle
)

// errCertificateExpired ends a link whose CA-verified peer certificate
// expired while it was up; the peer redials with its renewed one.
var errCertificateExpired = fmt.Errorf("%w: the peer's certificate expired", auth.ErrRejected)

// expiryWarnEvery spaces the warnings about a certificate near its expiry.
const expiryWarnEvery = 24 * time.Hour

// loadCertificate puts the node certificate chain of c (if any) into d.id,
// checked against the identity key.
func (d *Daemon) loadCertificate(c *configs.Config) error {
	if c.Certificate == "" {
		return nil
	}
	certs, err := auth.LoadCertificateFile(c.Certificate)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	d.id.Chain = auth.ChainDER(certs)
	if _, err := d.id.Certificate(); err != nil {
		return fmt.Errorf("certificate %s does not fit identity %s: %w", c.Certificate, c.Identity, err)
	}
	d.nodeCert = certs[0]
	return nil
}

// applyTrust puts the trust domain, the CAs of c and its revocation list
// into d.pins (at New and at every Reload).
func (d *Daemon) applyTrust(c *configs.Config) error {
	var rev revocation
	if f := c.Trust.RevokedFile; f != "" {
		keys, serials, err := configs.LoadRevoked(f)
		if err != nil {
			return fmt.Errorf("trust.revoked_file: %w", err)
		}
		rev = revocation{keys: len(keys), serials: len(serials)}
		d.pins.SetRevoked(keys, serials)
	} else {
		d.pins.SetRevoked(nil, nil)
	}
	d.pins.ReplaceAnchors(c.Trust.Domain, c.Anchors())
	d.log.Debug("trust applied", "trust_domain", c.Trust.Domain, "clusters_with_ca", len(c.Anchors()),
		"revoked_keys", rev.keys, "revoked_serials", rev.serials)
	return nil
}

type revocation struct{ keys, serials int }

// closeRevoked closes every up link whose peer presented a revoked key or
// serial, at once.
func (d *Daemon) closeRevoked() {
	for _, p := range d.peerList() {
		l := p.currentLink()
		if l == nil {
			continue
		}
		if err := d.pins.Revoked(l.peerChain); err != nil {
			d.closeForCert(l, closeRevoked, "certificate revoked", err)
		}
	}
}

// closeForCert ends an up link for its peer's certificate, counted under
// reason and logged.
func (d *Daemon) closeForCert(l *link, reason, short string, cause error) {
	if l.goaway.Load() {
		return // closing already
	}
	d.metrics.linksClosed.WithLabelValues(reason).Inc()
	d.log.Warn("closing a link for its peer's certificate", "peer", l.p.nodeName(), "reason", reason, "detail", cause.Error())
	l.goAway(wire.GoAwayNormal, short, cause)
}

// checkCertificates runs in the janitor: it closes the links whose
// CA-verified peer certificate expired, and warns (once a day per
// certificate) about this node's and the CAs' certificates near expiry.
func (d *Daemon) checkCertificates(now time.Time) {
	for _, p := range d.peerList() {
		l := p.currentLink()
		if l == nil || !l.caVerified || l.peerCert == nil || !now.After(l.peerCert.NotAfter) {
			continue
		}
		d.closeForCert(l, closeExpired, "certificate expired", fmt.Errorf("%w: serial %x expired at %s",
			errCertificateExpired, l.peerCert.SerialNumber, l.peerCert.NotAfter.UTC().Format(time.RFC3339)))
	}
	warn := d.Config().Trust.ExpiryWarning
	for _, tc := range d.trustedCerts() {
		if tc.cert.NotAfter.Sub(now) > warn {
			continue
		}
		key := tc.kind + " " + tc.cert.SerialNumber.String()
		if last, ok := d.expiryWarned[key]; ok && now.Sub(last) < expiryWarnEvery {
			continue
		}
		d.expiryWarned[key] = now
		d.log.Warn("certificate expires soon", "kind", tc.kind, "cluster", tc.cluster, "subject", tc.cert.Subject.String(),
			"serial", fmt.Sprintf("%x", tc.cert.SerialNumber), "not_after", tc.cert.NotAfter.UTC().Format(time.RFC3339),
			"in", tc.cert.NotAfter.Sub(now).Round(time.Minute).String())
	}
}

// trustedCert is a certificate whose expiry is watched.
type trustedCert struct {
	kind, cluster string // kind: node or ca
	cert          *x509.Certificate
}

// trustedCerts returns this node's certificate and the CA certificates of
// the config in force.
func (d *Daemon) trustedCerts() []trustedCert {
	var out []trustedCert
	if d.nodeCert != nil {
		out = append(out, trustedCert{"node", d.cfg.Cluster, d.nodeCert})
	}
	for cluster, cas := range d.Config().Anchors() {
		for _, ca := range cas {
			out = append(out, trustedCert{"ca", cluster, ca})
		}
	}
	return out
}

// certCollector reports the expiry of the trusted certificates at scrape
// time.
type certCollector struct{ d *Daemon }

var (
	descCertExpiry = prometheus.NewDesc("wandist_certificate_expiry_timestamp_seconds",
		"When the certificate expires (NotAfter, unix seconds): this node's (kind node) and each trusted CA's (kind ca).",
		[]string{"kind", "cluster", "serial"}, nil)
	descCertExpiring = prometheus.NewDesc("wandist_certificate_expiring",
		"1 when the certificate expires within trust.expiry_warning, else 0.",
		[]string{"kind", "cluster", "serial"}, nil)
)

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCertExpiry
	ch <- descCertExpiring
}

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.d.now()
	warn := c.d.Config().Trust.ExpiryWarning
	for _, tc := range c.d.trustedCerts() {
		serial := fmt.Sprintf("%x", tc.cert.SerialNumber)
		ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(tc.cert.NotAfter.Unix()), tc.kind, tc.cluster, serial)
		expiring := 0.0
		if tc.cert.NotAfter.Sub(now) <= warn {
			expiring = 1
		}
		ch <- prometheus.MustNewConstMetric(descCertExpiring, prometheus.GaugeValue, expiring, tc.kind, tc.cluster, serial)
	}
}

// CertStatus describes a certificate in /v1/status.
type CertStatus struct {
	Subject  string    `json:"subject"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	// CA is true when the certificate was issued by a cluster CA (a
	// spiffe:// URI SAN), false for a self-signed one.
	CA bool `json:"ca_issued"`
}

func certStatus(c *x509.Certificate) *CertStatus {
	if c == nil {
		return nil
	}
	_, td, _, err := auth.PeerFromCertificateWithDomain(c)
	return &CertStatus{Subject: c.Subject.String(), Serial: fmt.Sprintf("%x", c.SerialNumber), NotAfter: c.NotAfter.UTC(),
		CA: err == nil && td != ""}
}

// peerCertOf returns the peer's leaf and chain of a completed handshake,
// and whether the peer was verified by a CA (no pins for its name).
func (d *Daemon) peerCertOf(chain []*x509.Certificate) (*x509.Certificate, bool) {
	if len(chain) == 0 {
		return nil, false
	}
	id, td, _, err := auth.PeerFromCertificateWithDomain(chain[0])
	if err != nil {
		return chain[0], false
	}
	return chain[0], td != "" && len(d.pins.Keys(id)) == 0
}
