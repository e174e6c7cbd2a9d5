package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
)

func TestMinimal(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	c := configs.Default()
	c.Cluster, c.Node, c.Identity = "east", "east-1", "unused"
	c.Local.Socket = filepath.Join(t.TempDir(), "w.sock")
	d, err := daemon.New(c, daemon.Options{Key: k, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var out bytes.Buffer
	if err := run(context.Background(), c.Local.Socket, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "east/east-1 got \"hello, wandist\"\n" {
		t.Fatalf("printed %q", got)
	}
}
