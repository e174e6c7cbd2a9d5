package auth

import (
	"crypto/tls"
	"testing"
)

// A client that presents no certificate is refused by the verifier with
// its own reason, and onReject hears of it.
func TestHandshakeNoClientCertificate(t *testing.T) {
	l := newLink(t)
	cfg := l.clientConfig(t, l.client, l.server.ID)
	cfg.Certificates = nil
	s, c := handshake(t, l.serverConfig(t), cfg)
	wantReason(t, s.err, ReasonNoCertificate)
	if c.err == nil {
		t.Fatal("client without a certificate saw no error")
	}
	if got := l.serverRejects.get(); len(got) != 1 || got[0].Reason != ReasonNoCertificate {
		t.Fatalf("onReject got %v, want one no_certificate rejection", got)
	}
}

// A client that keeps session tickets cannot resume: the second handshake
// is a full one, with a fresh certificate check (and so no 0-RTT data
// either, which needs a ticket).
func TestHandshakeNoResumption(t *testing.T) {
	l := newLink(t)
	server := l.serverConfig(t)
	cfg := l.clientConfig(t, l.client, l.server.ID)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i := range 2 {
		s, c := handshake(t, server, cfg)
		if s.err != nil || c.err != nil {
			t.Fatalf("handshake %d: server %v, client %v", i, s.err, c.err)
		}
		if s.state.DidResume || c.state.DidResume {
			t.Fatalf("handshake %d resumed a session", i)
		}
		if len(s.state.PeerCertificates) == 0 {
			t.Fatalf("handshake %d: the server saw no client certificate", i)
		}
	}
}
