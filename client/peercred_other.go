//go:build !linux

package client

import "net"

// peerUID is not available here: only the socket file's owner is checked.
func peerUID(net.Conn) (int, bool) { return 0, false }
