package main

import (
	"context"
	"fmt"
	"os"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
)

// Environment variables that say where the daemon is.
const (
	envSocket     = "WANDIST_SOCKET"      // the local socket
	envToken      = "WANDIST_TOKEN"       // the local socket's token (local.token)
	envAdmin      = "WANDIST_ADMIN"       // the admin listener, host:port
	envAdminToken = "WANDIST_ADMIN_TOKEN" // its token (admin.token)
)

// defaultAdmin is the admin address used when no flag, environment
// variable or config names one.
const defaultAdmin = "127.0.0.1:7103"

// Help notes saying where a client or an admin command finds the daemon.
const (
	socketNote = "The daemon is found by the first of these that is set:\n" +
		"  socket: --socket, $" + envSocket + ", local.socket in -c FILE, else " + client.DefaultSocket + "\n" +
		"          (or $XDG_RUNTIME_DIR/wandist/wandist.sock if only that exists)\n" +
		"  token:  --token, $" + envToken + ", local.token in -c FILE, else none"
	adminNote = "The daemon's admin listener is found by the first of these that is set:\n" +
		"  address: --admin, $" + envAdmin + ", admin.listen in -c FILE, else " + defaultAdmin + "\n" +
		"  token:   --token, $" + envAdminToken + ", admin.token in -c FILE, else none"
)

// endpoint holds the flags that say where the daemon is: its config file,
// and an address and token that override it.
type endpoint struct {
	cfgPath, addr, token *string
	admin                bool // the admin listener, not the local socket
}

// socketFlags adds -c, --socket and --token to fs.
func socketFlags(fs *flagSet) *endpoint {
	fs.notes = append(fs.notes, socketNote)
	return &endpoint{
		cfgPath: fs.String("c", "", "the daemon's config `file`: its local.socket and local.token"),
		addr:    fs.String("socket", "", "the daemon's local socket `path` (default: see below)"),
		token:   fs.String("token", "", "the local socket's `token`, when the daemon requires one (default: see below)"),
	}
}

// adminFlags adds -c, --admin and --token to fs.
func adminFlags(fs *flagSet) *endpoint {
	fs.notes = append(fs.notes, adminNote)
	return &endpoint{
		admin:   true,
		cfgPath: fs.String("c", "", "the daemon's config `file`: its admin.listen and admin.token"),
		addr:    fs.String("admin", "", "the daemon's admin `address`, host:port (default: see below)"),
		token:   fs.String("token", "", "admin `token`, when the daemon requires one (default: see below)"),
	}
}

// resolve returns the address and token, each from the first source that
// sets it: the flag, the environment, the config file (-c). The address
// falls back to the default (the admin's, or "" for the SDK's); the token
// to none; an admin address is "" only when -c names a config without
// admin.listen. cfg is the loaded config, nil without -c.
func (e *endpoint) resolve() (addr, token string, cfg *configs.Config, err error) {
	if *e.cfgPath != "" {
		if cfg, err = configs.Load(*e.cfgPath); err != nil {
			return "", "", nil, fmt.Errorf("-c: %w", err)
		}
	}
	envAddr, envTok := envSocket, envToken
	var cfgAddr, cfgTok string
	if e.admin {
		envAddr, envTok = envAdmin, envAdminToken
	}
	if cfg != nil {
		cfgAddr, cfgTok = cfg.Local.Socket, cfg.Local.Token
		if e.admin {
			cfgAddr, cfgTok = dialable(cfg.Admin.Listen), cfg.Admin.Token
		}
	}
	addr = first(*e.addr, os.Getenv(envAddr), cfgAddr)
	token = first(*e.token, os.Getenv(envTok), cfgTok)
	if addr == "" && e.admin && cfg == nil {
		addr = defaultAdmin
	}
	return addr, token, cfg, nil
}

// resolveAdmin is resolve for the admin listener, which must be known.
func (e *endpoint) resolveAdmin() (addr, token string, err error) {
	addr, token, _, err = e.resolve()
	if err == nil && addr == "" {
		err = fmt.Errorf("-c %s: admin.listen is not set, so the daemon has no admin listener; set it, or give --admin or $%s", *e.cfgPath, envAdmin)
	}
	return addr, token, err
}

// connect connects to the daemon's local socket, as a client named name.
func (e *endpoint) connect(ctx context.Context, name string) (*client.Client, error) {
	socket, token, _, err := e.resolve()
	if err != nil {
		return nil, err
	}
	return client.Connect(ctx, client.Options{Socket: socket, Token: token, Name: name})
}

// first returns the first of ss that is not empty.
func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
