package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/internal/wire"
)

// cmdReload makes the daemon read its config file again. Over HTTP
// (POST /v1/reload, which answers whether the config was applied) when an
// admin token is known: from --token, $WANDIST_ADMIN_TOKEN or the config's
// admin.token. With -c FILE and no token, it sends the daemon SIGHUP, which
// needs no token: the daemon is found through the config's local socket.
func cmdReload(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("reload", "[-c FILE] [--admin ADDR] [--token T]", stdout)
	ep := adminFlags(fs)
	fs.notes = append(fs.notes, "With -c FILE and no token, reload sends SIGHUP to the daemon serving the config's local socket.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addr, tok, cfg, err := ep.resolve()
	if err != nil {
		return err
	}
	if cfg == nil || tok != "" {
		if addr == "" {
			_, _, err = ep.resolveAdmin()
			return err
		}
		return reloadHTTP(ctx, addr, tok, stdout)
	}
	pid, err := signalDaemon(ctx, cfg)
	if err != nil {
		return fmt.Errorf("no admin token to reload over HTTP, and SIGHUP failed: %w", err)
	}
	fmt.Fprintf(stdout, "sent SIGHUP to wandistd %s/%s (pid %d); its log says whether the config was applied\n", cfg.Cluster, cfg.Node, pid)
	return nil
}

// reloadHTTP asks the daemon at addr to reload, over HTTP.
func reloadHTTP(ctx context.Context, addr, token string, stdout io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/reload", nil)
	if err != nil {
		return fmt.Errorf("--admin %q: %w", addr, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the daemon's admin listener at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusOK:
		fmt.Fprint(stdout, string(body))
		return nil
	case http.StatusForbidden:
		return fmt.Errorf("reload refused: %s; without admin.token, `wandistd reload -c FILE` sends the daemon SIGHUP (as `systemctl reload wandistd` does)", msg)
	case http.StatusUnauthorized:
		return fmt.Errorf("reload refused: %s; give the daemon's admin.token with --token, $WANDIST_ADMIN_TOKEN or -c FILE", msg)
	}
	return fmt.Errorf("reload refused: %s", msg)
}

// dialable turns a listen address into one to dial: no host or an
// unspecified one (":7103", "0.0.0.0:7103") becomes loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || listen == "" {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}

// signalDaemon sends SIGHUP to the daemon serving cfg's local socket: the
// kernel names the process at the other end of a connection to it (only
// that daemon's user, or root, may signal it), and its hello must name
// cfg's cluster and node, so that no other program gets the signal (SIGHUP
// stops most programs).
func signalDaemon(ctx context.Context, cfg *configs.Config) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", cfg.Local.Socket)
	if err != nil {
		return 0, fmt.Errorf("cannot reach the daemon's local socket: %w", err)
	}
	defer conn.Close()
	pid, err := peerPID(conn.(*net.UnixConn))
	if err != nil {
		return 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	hello := &wire.ClientHello{Version: wire.LocalVersion, Name: "wandistd reload", Token: cfg.Local.Token}
	if _, err := conn.Write(wire.AppendFrame(nil, hello)); err != nil {
		return 0, fmt.Errorf("local socket %s: %w", cfg.Local.Socket, err)
	}
	t, body, err := wire.NewReader(conn, 64<<10).ReadFrame()
	var sh wire.ServerHello
	if err == nil && (t != wire.TypeServerHello || sh.DecodeBody(body) != nil) {
		err = errors.New("no wandistd hello")
	}
	if err != nil {
		return 0, fmt.Errorf("local socket %s: not answered by wandistd: %w", cfg.Local.Socket, err)
	}
	if sh.Cluster != cfg.Cluster || sh.Node != cfg.Node {
		return 0, fmt.Errorf("local socket %s is served by %s/%s, not %s/%s", cfg.Local.Socket, sh.Cluster, sh.Node, cfg.Cluster, cfg.Node)
	}
	if err := hangUp(pid); err != nil {
		return 0, fmt.Errorf("SIGHUP to pid %d: %w (run as the daemon's user, or root)", pid, err)
	}
	return pid, nil
}
