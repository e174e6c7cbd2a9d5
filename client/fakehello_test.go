package client

import (
	"net"

	"github.com/wandist/wandist/internal/wire"
)

// FakeHello is a fake daemon's side of the hello on conn, for the tests of
// this package and of client_test: it reads the client's hello, answers a
// ServerHello of the current version from cluster/node, and returns the
// reader of the frames that follow.
func FakeHello(conn net.Conn, cluster, node string) (*wire.Reader, error) {
	r := wire.NewReader(conn, 1<<20)
	if _, err := r.ReadMessage(); err != nil {
		return nil, err
	}
	_, err := conn.Write(wire.AppendFrame(nil, &wire.ServerHello{Version: wire.LocalVersion, Cluster: cluster, Node: node, MaxMessage: 1 << 20}))
	return r, err
}
