package daemon

import (
	"fmt"
	"net"
	"os"
	"time"
)

func startLocal(d *Daemon, path string) (*localServer, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("local socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("local socket %s: another daemon is listening on it", path)
		}
		_ = os.Remove(path) // stale socket of a daemon that died
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("local socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("local socket %s: chmod: %w", path, err)
	}
	s := &localServer{d: d, ln: ln, clients: map[*localClient]struct{}{}}
	s.wg.Go(s.acceptLoop)
	return s, nil
}
