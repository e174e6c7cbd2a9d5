package transport

import (
	"crypto/tls"
	"errors"
	"net"
)

// errNilTLSConfig is returned when Listen or Dial get no TLS config.
var errNilTLSConfig = errors.New("transport: nil tls.Config")

// prepareTLS validates a caller's TLS config and returns a clone with TLS 1.3
// as the minimum version. The caller's config is never modified.
func prepareTLS(conf *tls.Config) (*tls.Config, error) {
	if conf == nil {
		return nil, errNilTLSConfig
	}
	if len(conf.NextProtos) == 0 {
		return nil, ErrNoALPN
	}
	c := conf.Clone()
	if c.MinVersion < tls.VersionTLS13 {
		c.MinVersion = tls.VersionTLS13
	}
	return c, nil
}

// prepareClientTLS is prepareTLS for dialing addr: like tls.Dial it fills in
// ServerName from addr when verification needs one.
func prepareClientTLS(conf *tls.Config, addr string) (*tls.Config, error) {
	c, err := prepareTLS(conf)
	if err != nil {
		return nil, err
	}
	if c.ServerName == "" && !c.InsecureSkipVerify {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		c.ServerName = host
	}
	return c, nil
}

// checkNegotiated verifies what a completed handshake agreed on.
func checkNegotiated(cs tls.ConnectionState) error {
	if cs.Version != tls.VersionTLS13 {
		return handshakeError(errors.New("TLS 1.3 not negotiated"))
	}
	if cs.NegotiatedProtocol == "" {
		return handshakeError(ErrNoALPN)
	}
	return nil
}
