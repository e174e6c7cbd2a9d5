package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
	"github.com/wandist/wandist/gossip"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("run", "-c FILE", stdout)
	cfgPath := fs.String("c", "", "config `file` (YAML)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return usageErr(fs, "-c FILE is required")
	}
	cfg, err := configs.Load(*cfgPath)
	if err != nil {
		return err
	}
	log, level := newLogger(cfg.Log, stderr)
	source := func() (*configs.Config, error) { return configs.Load(*cfgPath) }
	d, err := daemon.New(cfg, daemon.Options{Logger: log, LogLevel: level, Source: source})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := d.ReloadFromSource(); err != nil {
				log.Error("reload refused; the running config stays in force", "err", err)
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("stopping")
	// Graceful stop: no new sends, GoAway to every peer, spool flushed;
	// bounded, so that a stuck peer cannot hold the process.
	done := make(chan error, 1)
	go func() { done <- d.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(stopDeadline):
		return fmt.Errorf("stop took longer than %v; exiting anyway", stopDeadline)
	}
}

// stopDeadline bounds a graceful stop.
const stopDeadline = 15 * time.Second

// newLogger makes the daemon's logger, with its level in a LevelVar that a
// reload sets (log.level); log.format needs a restart.
func newLogger(lc configs.Log, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	var l slog.Level
	_ = l.UnmarshalText([]byte(lc.Level)) // validated by configs.Load
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

func cmdKeygen(_ context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("keygen", "-o FILE|- [-f] [--json] | keygen --public FILE [--json]", stdout)
	out := fs.String("o", "", "write a new private key to `file` (mode 0600), or to stdout with -o -")
	force := fs.Bool("f", false, "overwrite an existing file")
	public := fs.String("public", "", "print the public key of the private key in `file` (made by keygen)")
	asJSON := fs.Bool("json", false, "print JSON: public_key and file")
	fs.notes = append(fs.notes, "keygen prints the public key as a line ed25519:..., as peers[].public_key takes it;\n"+
		"with -o - the private key goes to stdout and the public key line to stderr.")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	case *out == "" && *public == "":
		return usageErr(fs, "give -o FILE (a new key) or --public FILE (an existing key's public key)")
	case *out != "" && *public != "":
		return usageErr(fs, "give -o FILE or --public FILE, not both")
	case *out == "-" && *asJSON:
		return usageErr(fs, "--json cannot go with -o -: stdout carries the private key")
	case *out == "-" && *force:
		return usageErr(fs, "-f cannot go with -o -: no file is written")
	}
	var key ed25519.PrivateKey
	var err error
	file := *out
	switch {
	case *public != "":
		file = *public
		key, err = auth.LoadKeyFile(*public)
	case *out == "-":
		return keygenStdout(stdout, stderr)
	default:
		key, err = auth.GenerateKeyFile(*out, *force)
		if errors.Is(err, auth.ErrKeyExists) {
			err = fmt.Errorf("%w (use -f to overwrite)", err)
		}
	}
	if err != nil {
		return err
	}
	pub := auth.FormatPublicKey(key.Public().(ed25519.PublicKey))
	if *asJSON {
		return writeJSON(stdout, map[string]string{"public_key": pub, "file": file})
	}
	fmt.Fprintln(stdout, pub)
	return nil
}

// keygenStdout writes a new private key to stdout, as a key file holds it
// (a PEM PKCS#8 block), and its public key line to stderr.
func keygenStdout(stdout, stderr io.Writer) error {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if _, err := stdout.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return err
	}
	fmt.Fprintln(stderr, auth.FormatPublicKey(pub))
	return nil
}

func cmdConfig(_ context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	const synopsis = "usage: wandistd config check -c FILE"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, synopsis)
		return nil
	}
	if len(args) == 0 || args[0] != "check" {
		return &usageError{cmd: "config", msg: "want the subcommand check"}
	}
	fs := newFlags("config check", "-c FILE", stdout)
	cfgPath := fs.String("c", "", "config `file` (YAML)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *cfgPath == "" {
		return usageErr(fs, "-c FILE is required")
	}
	cfg, err := configs.Load(*cfgPath)
	if err != nil {
		return err
	}
	if _, err := os.Stat(cfg.Identity); err != nil {
		return fmt.Errorf("%s: identity: %w", filepath.Base(*cfgPath), err)
	}
	if _, err := auth.LoadKeyFile(cfg.Identity); err != nil {
		return fmt.Errorf("%s: identity: %w", filepath.Base(*cfgPath), err)
	}
	if f := cfg.Spool.SecretFile; f != "" {
		if _, err := auth.ReadSecretFile(f, 64<<10); err != nil {
			return fmt.Errorf("%s: spool.secret_file: %w", filepath.Base(*cfgPath), err)
		}
	}
	if f := cfg.Gossip.SecretFile; f != "" {
		b, err := auth.ReadSecretFile(f, 4<<10)
		if err == nil {
			_, err = gossip.ParseKey(b)
		}
		if err != nil {
			return fmt.Errorf("%s: gossip.secret_file: %w", filepath.Base(*cfgPath), err)
		}
	}
	fmt.Fprintf(stdout, "%s: ok (%s/%s, %d peers)\n", *cfgPath, cfg.Cluster, cfg.Node, len(cfg.Peers))
	return nil
}
