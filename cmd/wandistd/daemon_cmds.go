package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("run", "-c FILE", stderr)
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
	log := newLogger(cfg.Log, stderr)
	d, err := daemon.New(cfg, daemon.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("stopping")
	return d.Close()
}

func newLogger(lc configs.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(lc.Level))
	opts := &slog.HandlerOptions{Level: level}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdKeygen(_ context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("keygen", "-o FILE [-f]", stderr)
	out := fs.String("o", "", "write the private key to `file` (mode 0600)")
	force := fs.Bool("f", false, "overwrite an existing file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageErr(fs, "-o FILE is required")
	}
	key, err := auth.GenerateKeyFile(*out, *force)
	if err != nil {
		if errors.Is(err, auth.ErrKeyExists) {
			return fmt.Errorf("%w (use -f to overwrite)", err)
		}
		return err
	}
	fmt.Fprintln(stdout, auth.FormatPublicKey(key.Public().(ed25519.PublicKey)))
	return nil
}

func cmdConfig(_ context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: wandistd config check -c FILE")
		return errUsage
	}
	fs := newFlags("config check", "-c FILE", stderr)
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
	fmt.Fprintf(stdout, "%s: ok (%s/%s, %d peers)\n", *cfgPath, cfg.Cluster, cfg.Node, len(cfg.Peers))
	return nil
}
