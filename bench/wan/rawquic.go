//go:build linux

package wan

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/wandist/wandist/bench/proc"
	"github.com/wandist/wandist/bench/sys/raw"
	"github.com/wandist/wandist/bench/workload"
)

// quicConfig has wandist's windows (transport/quic.go): 8 MiB per stream,
// 32 MiB per connection, the whole connection window from the start.
func quicConfig() *quic.Config {
	return &quic.Config{MaxStreamReceiveWindow: 8 << 20, MaxConnectionReceiveWindow: 32 << 20,
		InitialConnectionReceiveWindow: 32 << 20, MaxIdleTimeout: 30 * time.Second, KeepAlivePeriod: 5 * time.Second}
}

// rawQUIC is one quic-go connection east to west, a stream per flow.
type rawQUIC struct {
	path       *Path
	udpE, udpW *net.UDPConn
	trE, trW   *quic.Transport
	ln         *quic.Listener
	near, far  *quic.Conn
	mu         sync.Mutex // serialises opens: each accepts the stream it opened
}

func (s *rawQUIC) Name() string           { return "raw-quic-go" }
func (s *rawQUIC) Procs() []*proc.Process { return nil }

func selfSigned() (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"west"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

func (s *rawQUIC) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			s.Stop()
			err = fmt.Errorf("raw-quic-go: %w", err)
		}
	}()
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	if s.udpW, err = s.path.listenUDP("west"); err != nil {
		return err
	}
	if s.udpE, err = s.path.listenUDP("east"); err != nil {
		return err
	}
	s.trW, s.trE = &quic.Transport{Conn: s.udpW}, &quic.Transport{Conn: s.udpE}
	if s.ln, err = s.trW.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"wbench"}}, quicConfig()); err != nil {
		return err
	}
	if s.near, err = s.trE.Dial(ctx, s.udpW.LocalAddr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"wbench"}}, quicConfig()); err != nil {
		return err
	}
	s.far, err = s.ln.Accept(ctx)
	return err
}

func (s *rawQUIC) Stop() error {
	for _, c := range []*quic.Conn{s.near, s.far} {
		if c != nil {
			c.CloseWithError(0, "")
		}
	}
	if s.ln != nil {
		s.ln.Close()
	}
	var errs []error
	for _, t := range []*quic.Transport{s.trE, s.trW} {
		if t != nil {
			errs = append(errs, t.Close())
		}
	}
	for _, u := range []*net.UDPConn{s.udpE, s.udpW} {
		if u != nil {
			u.Close()
		}
	}
	*s = rawQUIC{path: s.path}
	return errors.Join(errs...)
}

// stream closes by cancelling both directions: what is unsent is dropped.
type stream struct{ *quic.Stream }

func (s stream) Close() error {
	s.CancelRead(0)
	s.CancelWrite(0)
	return nil
}

// pair opens a stream east to west; a one-byte hello makes it known to
// the far end, which reads it before the frames.
func (s *rawQUIC) pair(ctx context.Context) (near, far io.ReadWriteCloser, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, err := s.near.OpenStreamSync(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("raw-quic-go: open stream: %w", err)
	}
	if _, err := ns.Write([]byte{'H'}); err != nil {
		return nil, nil, fmt.Errorf("raw-quic-go: hello: %w", err)
	}
	fs, err := s.far.AcceptStream(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("raw-quic-go: accept stream: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(fs, b[:]); err != nil {
		return nil, nil, fmt.Errorf("raw-quic-go: hello: %w", err)
	}
	return stream{ns}, stream{fs}, nil
}

func (s *rawQUIC) OpenPipe(ctx context.Context, onMsg func([]byte)) (workload.Sender, error) {
	near, far, err := s.pair(ctx)
	if err != nil {
		return nil, err
	}
	return raw.NewPipe(near, far, onMsg), nil
}

func (s *rawQUIC) OpenRPC(ctx context.Context) (workload.Caller, error) {
	near, far, err := s.pair(ctx)
	if err != nil {
		return nil, err
	}
	return raw.NewCaller(near, far), nil
}

func (s *rawQUIC) OpenHighRPC(ctx context.Context) (workload.Caller, error) { return s.OpenRPC(ctx) }
