//go:build !linux

package transport

import "net"

func setNotSentLowat(*net.TCPConn, int) {}
