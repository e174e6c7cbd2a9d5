// Package netutil holds the small network helpers the benchmark's systems
// share: free loopback ports, polling until a condition holds, and reading
// JSON from a loopback HTTP endpoint.
package netutil

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// FreePort returns a loopback port free for both TCP and UDP at the time of
// the call, and never the same port twice in one process (a port handed out
// but not yet bound by its server looks free again).
func FreePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		if given[port] {
			continue
		}
		given[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("free port: no port free for both TCP and UDP after 100 tries")
}

// Addr is 127.0.0.1:port.
func Addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// Poll calls f every interval until it reports true, fails, or ctx ends.
func Poll(ctx context.Context, interval time.Duration, what string, f func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := f()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// GetJSON decodes the JSON answer of GET url into v.
func GetJSON(ctx context.Context, url string, v any) error {
	return getJSON(ctx, httpClient, url, v)
}

func getJSON(ctx context.Context, hc *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", url, err)
	}
	return nil
}

// Listening reports whether a TCP connection to addr succeeds now.
func Listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Site is where a server runs: a network namespace (empty: the current
// one), the address it listens on there, and how to dial into it.
type Site struct {
	NS   string // network namespace, as `ip netns` names it
	Host string // address servers listen on (default 127.0.0.1)
	// Dial dials from inside NS (for the servers' loopback-only
	// endpoints); nil dials from the current namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ListenHost is the address servers at s listen on.
func (s Site) ListenHost() string {
	if s.Host == "" {
		return "127.0.0.1"
	}
	return s.Host
}

// Command returns path and args as run inside s's namespace (via
// `ip netns exec`, which keeps the process id).
func (s Site) Command(path string, args []string) (string, []string) {
	if s.NS == "" {
		return path, args
	}
	return "ip", append([]string{"netns", "exec", s.NS, path}, args...)
}

// HTTP returns a client whose connections start at s.
func (s Site) HTTP() *http.Client {
	if s.Dial == nil {
		return httpClient
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: s.Dial, DisableKeepAlives: true}}
}

// GetJSONAt is GetJSON with connections from s.
func GetJSONAt(ctx context.Context, s Site, url string, v any) error {
	return getJSON(ctx, s.HTTP(), url, v)
}
