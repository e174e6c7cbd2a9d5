package daemon

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
)

// testAlert stands for crypto/tls's unexported alert type: a uint8 error.
type testAlert uint8

func (a testAlert) Error() string { return fmt.Sprintf("tls: alert %d", uint8(a)) }

func TestKeyRefusalRecognisesAlerts(t *testing.T) {
	remote := func(a uint8) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("transport: handshake failed: %w", &net.OpError{Op: "remote error", Err: testAlert(a)})}
	}
	for _, c := range []struct {
		err   error
		alert uint8
		ok    bool
	}{
		{remote(alertBadCertificate), alertBadCertificate, true},
		{remote(alertUnknownCA), alertUnknownCA, true},
		{remote(80), 0, false}, // internal_error: not about our key
		{&net.OpError{Op: "dial", Err: &quic.TransportError{Remote: true, ErrorCode: quicCryptoErrorBase + alertBadCertificate}}, alertBadCertificate, true},
		{&quic.TransportError{Remote: false, ErrorCode: quicCryptoErrorBase + alertBadCertificate}, 0, false}, // our own refusal of theirs
		{&quic.TransportError{Remote: true, ErrorCode: quic.ConnectionRefused}, 0, false},
		{errors.Join(io.EOF, fmt.Errorf("x: %w", &net.OpError{Op: "remote error", Err: testAlert(alertCertificateRequired)})), alertCertificateRequired, true},
		{io.EOF, 0, false},
		{nil, 0, false},
	} {
		if a, ok := keyRefusal(c.err); a != c.alert || ok != c.ok {
			t.Errorf("keyRefusal(%v) = %d %v, want %d %v", c.err, a, ok, c.alert, c.ok)
		}
	}
}

// A dialer whose key the far side does not pin warns once, naming the
// likely cause, and logs the retries at INFO; after a link has been up,
// a new refusal warns again.
func TestDialerWarnsOnceWhenKeyRefused(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east := newNode(t, tr, "east", "east-1")
		west := newNode(t, tr, "west", "west-1")
		wrong := newKey(t).Public().(ed25519.PublicKey)
		east.cfg.Peers = []configs.Peer{peerOf(west, tr, "", "accept")}
		east.cfg.Peers[0].PublicKeys = []ed25519.PublicKey{wrong}
		east.start()
		var logs syncBuffer
		west.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		west.cfg.Peers = []configs.Peer{peerOf(east, tr, east.addr(tr), "connect")}
		west.start()

		const warn = `level=WARN msg="east/east-1 refused our key: is west/west-1's public key in its peers list (peers[].public_key) or its CA in its trust (trust.ca_files, remotes[].ca_files)? (tls: bad certificate)"`
		retries := func() int {
			s := logs.String()
			i := strings.Index(s, warn)
			if i < 0 {
				return -1
			}
			return strings.Count(s[i:], `level=INFO msg="dial failed"`)
		}
		waitUntil(t, 20*time.Second, func() bool { return retries() >= 3 },
			func() string { return "no warning followed by 3 retries in west's log:\n" + logs.String() })
		if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
			t.Fatalf("%d warnings, want 1 for the streak:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), `our_public_key="`+auth.FormatPublicKey(west.pub())+`"`) {
			t.Fatalf("the warning does not give our public key:\n%s", logs.String())
		}

		// Pin the right key: the link comes up. Pin a wrong one again: the
		// link closes, and the new streak of refusals warns once more.
		pin := func(key ed25519.PublicKey) {
			cfg := *east.d.Config() // a copy: the daemon keeps the config it is given
			cfg.Peers = append([]configs.Peer(nil), cfg.Peers...)
			cfg.Peers[0].PublicKeys = []ed25519.PublicKey{key}
			if err := east.d.Reload(&cfg); err != nil {
				t.Fatal(err)
			}
		}
		pin(west.pub())
		waitLink(t, west.d, "east", "east-1")
		waitLink(t, east.d, "west", "west-1") // up on east too, for the next reload to close it
		pin(wrong)
		waitUntil(t, 20*time.Second, func() bool { return strings.Count(logs.String(), warn) == 2 },
			func() string { return "no second warning after the link was up:\n" + logs.String() })
	})
}
