package client_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
)

// A daemon that stops reading: SendAsync fails fast with ErrBusy once the
// SDK's bounded write buffer is full, never blocking or growing without
// bound.
func TestSendAsyncBounded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stuck.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := client.FakeHello(conn, "c", "n"); err != nil {
			return
		}
		select {} // then never reads again
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Socket: path, NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 64<<10)
	for i := 0; i < 10_000; i++ { // 640 MiB if nothing stopped it
		err := c.SendAsync(client.Target{Group: "g"}, payload)
		if errors.Is(err, client.ErrBusy) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("SendAsync never answered ErrBusy against a daemon that does not read")
}

func TestConnectErrors(t *testing.T) {
	ctx := context.Background()
	_, err := client.Connect(ctx, client.Options{Socket: filepath.Join(t.TempDir(), "none.sock")})
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("missing socket: %v", err)
	}
	t.Setenv("WANDIST_SOCKET", filepath.Join(t.TempDir(), "env.sock"))
	_, err = client.Connect(ctx, client.Options{})
	if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "env.sock") {
		t.Fatalf("socket from the environment: %v (want it to name env.sock)", err)
	}
	if _, err := client.ParseAddr("east/east-1/12"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "east/east-1", "east//1", "east/n/x", "east/n/0"} {
		if _, err := client.ParseAddr(bad); err == nil {
			t.Errorf("ParseAddr(%q) accepted", bad)
		}
	}
}
