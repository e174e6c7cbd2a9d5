package auth

import (
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"testing"
)

var testALPN = []string{"wandist/1"}

// link holds a server and a client identity pinned for each other.
type link struct {
	server, client Identity
	serverPins     *PinSet // what the server accepts
	clientPins     *PinSet // what the client accepts
	serverRejects  rejections
	clientRejects  rejections
}

func newLink(t *testing.T) *link {
	l := &link{
		server:     newIdentity(t, "west", "west-1"),
		client:     newIdentity(t, "east", "east-1"),
		serverPins: NewPinSet(),
		clientPins: NewPinSet(),
	}
	l.serverPins.Set(l.client.ID, []ed25519.PublicKey{l.client.Public()})
	l.clientPins.Set(l.server.ID, []ed25519.PublicKey{l.server.Public()})
	return l
}

func (l *link) serverConfig(t *testing.T) *tls.Config {
	cfg, err := ServerTLSConfig(l.server, l.serverPins, testALPN, l.serverRejects.add)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (l *link) clientConfig(t *testing.T, as Identity, expect PeerID) *tls.Config {
	cfg, err := ClientTLSConfig(as, l.clientPins, expect, testALPN, l.clientRejects.add)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestHandshakeSuccess(t *testing.T) {
	l := newLink(t)
	s, c := handshake(t, l.serverConfig(t), l.clientConfig(t, l.client, l.server.ID))
	if s.err != nil || c.err != nil {
		t.Fatalf("handshake failed: server %v, client %v", s.err, c.err)
	}
	for side, r := range map[string]result{"server": s, "client": c} {
		if r.state.Version != tls.VersionTLS13 || r.state.NegotiatedProtocol != testALPN[0] {
			t.Errorf("%s: version %x, ALPN %q; want TLS 1.3 and %q", side, r.state.Version, r.state.NegotiatedProtocol, testALPN[0])
		}
	}
	id, key, err := PeerFromConnectionState(s.state)
	if err != nil || id != l.client.ID || !key.Equal(l.client.Public()) {
		t.Fatalf("server sees peer %v (key match %v, err %v), want %v", id, key.Equal(l.client.Public()), err, l.client.ID)
	}
	id, key, err = PeerFromConnectionState(c.state)
	if err != nil || id != l.server.ID || !key.Equal(l.server.Public()) {
		t.Fatalf("client sees peer %v (key match %v, err %v), want %v", id, key.Equal(l.server.Public()), err, l.server.ID)
	}
	if n := len(l.serverRejects.get()) + len(l.clientRejects.get()); n != 0 {
		t.Fatalf("onReject called %d times on success", n)
	}
}

func TestHandshakeUnpinnedClientKey(t *testing.T) {
	l := newLink(t)
	impostor := newIdentity(t, l.client.ID.Cluster, l.client.ID.Node)
	s, c := handshake(t, l.serverConfig(t), l.clientConfig(t, impostor, l.server.ID))
	rej := wantReason(t, s.err, ReasonUnpinnedKey)
	if rej.Claimed != l.client.ID || rej.Key != FormatPublicKey(impostor.Public()) {
		t.Fatalf("RejectError = %+v, want the impostor's claim and key", rej)
	}
	if c.err == nil {
		t.Fatal("client saw no error although the server rejected it")
	}
	got := l.serverRejects.get()
	if len(got) != 1 || got[0].Reason != ReasonUnpinnedKey {
		t.Fatalf("onReject got %v, want one unpinned_key rejection", got)
	}
}

func TestHandshakeNameMismatch(t *testing.T) {
	l := newLink(t)
	other := newIdentity(t, "east", "east-2")
	l.serverPins.Set(other.ID, []ed25519.PublicKey{other.Public()})
	// east-1's pinned key, claiming to be east-2.
	liar := Identity{ID: other.ID, Key: l.client.Key}
	s, c := handshake(t, l.serverConfig(t), l.clientConfig(t, liar, l.server.ID))
	rej := wantReason(t, s.err, ReasonNameMismatch)
	if rej.Claimed != other.ID {
		t.Fatalf("Claimed = %v, want %v", rej.Claimed, other.ID)
	}
	if c.err == nil {
		t.Fatal("client saw no error although the server rejected it")
	}
	if got := l.serverRejects.get(); len(got) != 1 || got[0].Reason != ReasonNameMismatch {
		t.Fatalf("onReject got %v, want one name_mismatch rejection", got)
	}
}

func TestHandshakeUnknownClient(t *testing.T) {
	l := newLink(t)
	stranger := newIdentity(t, "north", "north-1")
	s, _ := handshake(t, l.serverConfig(t), l.clientConfig(t, stranger, l.server.ID))
	wantReason(t, s.err, ReasonUnknownPeer)
}

func TestHandshakeWrongPeer(t *testing.T) {
	l := newLink(t)
	// The client dials west-2 (pinned) but reaches west-1.
	west2 := newIdentity(t, "west", "west-2")
	l.clientPins.Set(west2.ID, []ed25519.PublicKey{west2.Public()})
	s, c := handshake(t, l.serverConfig(t), l.clientConfig(t, l.client, west2.ID))
	rej := wantReason(t, c.err, ReasonWrongPeer)
	if rej.Claimed != l.server.ID {
		t.Fatalf("Claimed = %v, want the node reached, %v", rej.Claimed, l.server.ID)
	}
	if s.err == nil {
		t.Fatal("server saw no error although the client rejected it")
	}
	if got := l.clientRejects.get(); len(got) != 1 || got[0].Reason != ReasonWrongPeer {
		t.Fatalf("client onReject got %v, want one wrong_peer rejection", got)
	}
	if got := l.serverRejects.get(); len(got) != 0 {
		t.Fatalf("server onReject got %v, want none", got)
	}
}

func TestHandshakeUnpinnedServerKey(t *testing.T) {
	l := newLink(t)
	l.clientPins.Set(l.server.ID, []ed25519.PublicKey{newIdentity(t, "west", "west-1").Public()})
	_, c := handshake(t, l.serverConfig(t), l.clientConfig(t, l.client, l.server.ID))
	wantReason(t, c.err, ReasonUnpinnedKey)
}

func TestHandshakeRotationWithoutNewConfig(t *testing.T) {
	l := newLink(t)
	serverCfg := l.serverConfig(t)
	next := Identity{ID: l.client.ID, Key: newIdentity(t, "east", "east-1").Key}

	l.serverPins.Set(l.client.ID, []ed25519.PublicKey{l.client.Public(), next.Public()})
	for _, as := range []Identity{l.client, next} {
		if s, c := handshake(t, serverCfg, l.clientConfig(t, as, l.server.ID)); s.err != nil || c.err != nil {
			t.Fatalf("during rotation: server %v, client %v", s.err, c.err)
		}
	}
	l.serverPins.Set(l.client.ID, []ed25519.PublicKey{next.Public()})
	s, _ := handshake(t, serverCfg, l.clientConfig(t, l.client, l.server.ID))
	wantReason(t, s.err, ReasonUnpinnedKey)
	if s, c := handshake(t, serverCfg, l.clientConfig(t, next, l.server.ID)); s.err != nil || c.err != nil {
		t.Fatalf("after rotation, new key: server %v, client %v", s.err, c.err)
	}
}

func TestHandshakeTLS12ClientFails(t *testing.T) {
	l := newLink(t)
	cfg := l.clientConfig(t, l.client, l.server.ID)
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	s, c := handshake(t, l.serverConfig(t), cfg)
	if s.err == nil || c.err == nil {
		t.Fatalf("TLS 1.2 client: server %v, client %v; want both to fail", s.err, c.err)
	}
	if s.state.HandshakeComplete || c.state.HandshakeComplete {
		t.Fatal("a handshake completed with a TLS 1.2 client")
	}
	if errors.Is(s.err, ErrRejected) {
		t.Fatalf("server error %v is a pin rejection, want a version failure", s.err)
	}
}

func TestHandshakeNoALPNClientFails(t *testing.T) {
	l := newLink(t)
	cfg := l.clientConfig(t, l.client, l.server.ID)
	cfg.NextProtos = nil
	cfg.VerifyConnection = nil // only the server's check is under test
	s, _ := handshake(t, l.serverConfig(t), cfg)
	if !errors.Is(s.err, ErrNoProtocol) {
		t.Fatalf("server error = %v, want ErrNoProtocol", s.err)
	}
}

func TestTLSConfigArguments(t *testing.T) {
	id := newIdentity(t, "east", "east-1")
	pins := NewPinSet()
	peer := PeerID{Cluster: "west", Node: "west-1"}

	cfg, err := ServerTLSConfig(id, pins, testALPN, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS13 || cfg.MaxVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.RequestClientCert || !cfg.SessionTicketsDisabled {
		t.Fatalf("server config: versions %x..%x, client auth %v", cfg.MinVersion, cfg.MaxVersion, cfg.ClientAuth)
	}
	cfg, err = ClientTLSConfig(id, pins, peer, testALPN, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS13 || cfg.MaxVersion != tls.VersionTLS13 || !cfg.InsecureSkipVerify || cfg.VerifyConnection == nil {
		t.Fatal("client config is not TLS 1.3 only with pinned verification")
	}

	for name, build := range map[string]func() error{
		"server no ALPN":    func() error { _, err := ServerTLSConfig(id, pins, nil, nil); return err },
		"server empty ALPN": func() error { _, err := ServerTLSConfig(id, pins, []string{""}, nil); return err },
		"server no pins":    func() error { _, err := ServerTLSConfig(id, nil, testALPN, nil); return err },
		"server no key":     func() error { _, err := ServerTLSConfig(Identity{ID: id.ID}, pins, testALPN, nil); return err },
		"client no ALPN":    func() error { _, err := ClientTLSConfig(id, pins, peer, nil, nil); return err },
		"client no pins":    func() error { _, err := ClientTLSConfig(id, nil, peer, testALPN, nil); return err },
		"client bad expect": func() error { _, err := ClientTLSConfig(id, pins, PeerID{}, testALPN, nil); return err },
	} {
		if err := build(); !errors.Is(err, ErrInvalidTLSConfig) {
			t.Errorf("%s: error %v, want ErrInvalidTLSConfig", name, err)
		}
	}
}

func TestPeerFromConnectionStateNoCertificate(t *testing.T) {
	_, _, err := PeerFromConnectionState(tls.ConnectionState{})
	wantReason(t, err, ReasonNoCertificate)
}
