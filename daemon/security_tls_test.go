package daemon

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/transport"
)

// securedPair starts east (accepting, logging into a capture) and west
// (dialling east at addr(east), or east itself if addr is nil) over tr, and
// a mailbox on west in group "g" that east sees.
func securedPair(t *testing.T, tr string, adjust func(east *node), addr func(east *node) string) (east, west *node, logs logCapture, check func()) {
	t.Helper()
	east = newNode(t, tr, "east", "east-1")
	west = newNode(t, tr, "west", "west-1")
	logs = east.capturing()
	if adjust != nil {
		adjust(east)
	}
	east.cfg.Peers = []configs.Peer{peerOf(west, tr, "", "accept")}
	east.start()
	dial := east.addr(tr)
	if addr != nil {
		dial = addr(east)
	}
	west.cfg.Peers = []configs.Peer{peerOf(east, tr, dial, "connect")}
	west.start()
	waitLink(t, west.d, "east", "east-1")
	waitLink(t, east.d, "west", "west-1")
	mb := subscribe(t, west, "g", east)
	sent := 0
	// check: the link made before the attacks still carries messages and
	// never went down.
	check = func() {
		t.Helper()
		ec := connect(t, east)
		if err := ec.SendGroup(ctxT(t, 5*time.Second), "g", []byte("0")); err != nil {
			t.Fatal(err)
		}
		sent++
		m, err := mb.Receive(ctxT(t, 5*time.Second))
		if err != nil || string(m.Payload) != "0" {
			t.Fatalf("established link: message %d not delivered: %v", sent, err)
		}
		if ups := west.d.LinkUps("east", "east-1"); ups != 1 {
			t.Fatalf("the established link came up %d times", ups)
		}
	}
	return east, west, logs, check
}

// TestOpenSSLClientsRefused runs the openssl command line client against
// the TCP link port: TLS 1.2 is refused, TLS 1.3 without a client
// certificate is refused with reason no_certificate, a plaintext client is
// refused; each is counted and logged, and the established link goes on. A
// TLS 1.3 client with a pinned certificate passes the same handshake, so
// the refusals come from the defences, not from the harness.
func TestOpenSSLClientsRefused(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed (Debian package openssl; .ci/run should apt-get install it): the real-client TLS checks are skipped")
	}
	east, west, logs, check := securedPair(t, "tcp", func(n *node) {
		// The control client below sends nothing after its handshake: the
		// daemon must close it (with close_notify, which openssl wants) at
		// the handshake timeout, before the idle timeout cuts it abruptly.
		n.cfg.Link.HandshakeTimeout = time.Second
		n.cfg.Link.KeepaliveTimeout = 5 * time.Second
	}, nil)
	addr := east.addr("tcp")
	sClient := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// -ign_eof: stay until the daemon closes, so that an alert the
		// daemon sends after the client's Finished (TLS 1.3) is read.
		base := []string{"s_client", "-connect", addr, "-servername", auth.ServerName, "-alpn", ALPN, "-ign_eof"}
		out, err := exec.CommandContext(ctx, openssl, append(base, args...)...).CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("openssl %v did not finish: %s", args, out)
		}
		return string(out), err
	}

	// TLS 1.2 only: refused (protocol_version alert), counted as "tls".
	out, err := sClient("-tls1_2")
	if err == nil {
		t.Fatalf("openssl -tls1_2 succeeded:\n%s", out)
	}
	waitRejects(t, east.d, "tls", 1)
	r := logs.wait(t, "the TLS 1.2 client", func(r logRecord) bool { return strings.HasPrefix(r.msg, "handshake failed") })
	if r.errAttr("err") == nil || r.attrs["remote"].String() == "" {
		t.Fatalf("TLS failure logged without its error and remote address: %+v", r.attrs)
	}

	// TLS 1.3 without a client certificate: refused, reason no_certificate.
	out, err = sClient("-tls1_3")
	if err == nil {
		t.Fatalf("openssl -tls1_3 without a certificate succeeded:\n%s", out)
	}
	waitRejects(t, east.d, string(auth.ReasonNoCertificate), 1)
	logs.wait(t, "the client without a certificate", func(r logRecord) bool {
		return r.msg == "peer rejected" && r.attrs["reason"].String() == string(auth.ReasonNoCertificate)
	})

	// Plaintext (HTTP) on the TLS port: the daemon hangs up, counted.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: wandist\r\n\r\n"))
	expectHangUp(t, c, "plaintext client")
	c.Close()
	waitRejects(t, east.d, "tls", 2)

	// Control: the same client with west's certificate and key passes the
	// TLS handshake (the daemon then closes it for sending no Hello).
	dir := t.TempDir()
	certFile, keyFile := writeCertAndKey(t, dir, west)
	if out, err := sClient("-tls1_3", "-cert", certFile, "-key", keyFile); err != nil {
		t.Fatalf("openssl with a pinned certificate failed: %v\n%s", err, out)
	}
	for _, reason := range []string{"tls", string(auth.ReasonNoCertificate), string(auth.ReasonUnpinnedKey)} {
		want := map[string]float64{"tls": 2, string(auth.ReasonNoCertificate): 1}[reason]
		if got := rejects(east.d, reason); got != want {
			t.Errorf("rejections %q = %v after the control, want %v", reason, got, want)
		}
	}
	check()
}

// writeCertAndKey writes n's certificate and private key as PEM files for
// openssl.
func writeCertAndKey(t *testing.T, dir string, n *node) (certFile, keyFile string) {
	t.Helper()
	id := auth.Identity{ID: auth.PeerID{Cluster: n.cfg.Cluster, Node: n.cfg.Node}, Key: n.key}
	cert, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(n.key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// recordedHandshake makes west link to east through a recording proxy and
// returns what west sent on that TCP connection: its ClientHello, its
// second flight and the first link frames.
func recordedHandshake(t *testing.T, adjust func(*node)) (east *node, logs logCapture, sent []byte, check func()) {
	t.Helper()
	var proxy *recordingProxy
	east, _, logs, check = securedPair(t, "tcp", adjust, func(e *node) string {
		proxy = startRecordingProxy(t, e.addr("tcp"))
		return proxy.addr()
	})
	sent = proxy.recorded()
	if len(sent) < 5 || sent[0] != 22 { // a TLS handshake record
		t.Fatalf("recorded %d bytes, not a TLS handshake", len(sent))
	}
	return east, logs, sent, check
}

// A recorded, successful handshake replayed on a fresh connection is
// refused: the daemon's fresh random and key share make the recorded
// second flight undecryptable. Counted and logged; no link comes up.
func TestReplayedHandshakeRefused(t *testing.T) {
	east, logs, sent, check := recordedHandshake(t, nil)
	before := rejects(east.d, "tls")
	c, err := net.Dial("tcp", east.addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(sent); err != nil {
		t.Fatal(err)
	}
	expectHangUp(t, c, "replayed handshake")
	waitRejects(t, east.d, "tls", before+1)
	logs.wait(t, "the replayed handshake", func(r logRecord) bool {
		return strings.HasPrefix(r.msg, "handshake failed") && r.attrs["remote"].String() == c.LocalAddr().String()
	})
	if ups := east.d.LinkUps("west", "west-1"); ups != 1 {
		t.Fatalf("link from west came up %d times: the replay made a link", ups)
	}
	check()
}

// A handshake cut short (the connection closed mid-ClientHello, or after
// it) is refused and counted; one that stalls mid-ClientHello is dropped at
// link.hello_timeout. The established link goes on.
func TestTruncatedHandshakeRefused(t *testing.T) {
	const timeout = 300 * time.Millisecond
	east, logs, sent, check := recordedHandshake(t, func(n *node) {
		n.cfg.Link.HandshakeTimeout, n.cfg.Link.HelloTimeout = 2*timeout, timeout
	})
	helloLen := 5 + int(binary.BigEndian.Uint16(sent[3:5]))
	count := rejects(east.d, "tls")
	for _, cut := range []int{3, 40, helloLen - 1, helloLen} {
		c, err := net.Dial("tcp", east.addr("tcp"))
		if err != nil {
			t.Fatal(err)
		}
		c.Write(sent[:cut])
		c.(*net.TCPConn).CloseWrite()
		expectHangUp(t, c, "truncated handshake")
		c.Close()
		count++
		waitRejects(t, east.d, "tls", count)
	}

	// Stalled: the first part of a ClientHello, then nothing.
	c, err := net.Dial("tcp", east.addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.Write(sent[:40])
	expectHangUp(t, c, "stalled handshake")
	// Bounds, not a speed check: the drop must come from the configured
	// timeout, not earlier, and not from the 5 s default.
	if d := time.Since(start); d < timeout/2 || d > 10*timeout {
		t.Fatalf("stalled handshake dropped after %v; link.hello_timeout is %v", d, timeout)
	}
	waitRejects(t, east.d, "hello_timeout", 1)
	if n := rejects(east.d, "tls"); n != count {
		t.Fatalf("tls rejections = %v after the stalled ClientHello, want %v", n, count)
	}
	// The first failure was logged (later ones within 10 s are counted
	// only); the stalled one is told apart by its deadline error.
	logs.wait(t, "the truncated handshakes", func(r logRecord) bool { return strings.HasPrefix(r.msg, "handshake failed") })
	check()
}

// A QUIC client that sends its Initial packets and then goes silent (here:
// a real client's Initials replayed from another socket) is dropped at the
// handshake timeout and counted; the established QUIC link goes on.
func TestQUICStalledHandshakeDropped(t *testing.T) {
	const timeout = 300 * time.Millisecond
	east, _, logs, check := securedPair(t, "quic", func(n *node) { n.cfg.Link.HandshakeTimeout = timeout }, nil)
	initials := recordQUICInitials(t)
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	dst, err := net.ResolveUDPAddr("udp", east.addr("quic"))
	if err != nil {
		t.Fatal(err)
	}
	before := rejects(east.d, "tls")
	start := time.Now()
	for _, p := range initials {
		if _, err := udp.WriteToUDP(p, dst); err != nil {
			t.Fatal(err)
		}
	}
	waitRejects(t, east.d, "tls", before+1)
	// A bound, not a speed check: the configured timeout, not quic-go's 5 s.
	if d := time.Since(start); d > 10*timeout {
		t.Fatalf("stalled QUIC handshake dropped after %v; link.handshake_timeout is %v", d, timeout)
	}
	r := logs.wait(t, "the stalled QUIC handshake", func(r logRecord) bool { return strings.HasPrefix(r.msg, "handshake failed") })
	if err := r.errAttr("err"); err == nil {
		t.Fatalf("stalled QUIC handshake logged without its error: %+v", r.attrs)
	}
	if ups := east.d.LinkUps("west", "west-1"); ups != 1 {
		t.Fatalf("link from west came up %d times", ups)
	}
	check()
}

// recordQUICInitials returns the first datagrams a QUIC client sends (its
// ClientHello in Initial packets), captured by a socket that never answers.
func recordQUICInitials(t *testing.T) [][]byte {
	t.Helper()
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	id := auth.Identity{ID: auth.PeerID{Cluster: "north", Node: "north-1"}, Key: newKey(t)}
	pins := auth.NewPinSet()
	tc, err := auth.ClientTLSConfig(id, pins, auth.PeerID{Cluster: "east", Node: "east-1"}, []string{ALPN}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan [][]byte, 1)
	go func() {
		var ps [][]byte
		buf := make([]byte, 65536)
		for {
			sink.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, _, err := sink.ReadFromUDP(buf)
			if err != nil {
				got <- ps
				return
			}
			ps = append(ps, append([]byte(nil), buf[:n]...))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	tr := transport.NewQUIC(transport.Options{})
	if _, err := tr.Dial(ctx, sink.LocalAddr().String(), tc); err == nil {
		t.Fatal("dial to a silent socket succeeded")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("dial to the recording socket: %v", err)
	}
	ps := <-got
	if len(ps) == 0 {
		t.Fatal("the QUIC client sent nothing")
	}
	return ps
}
