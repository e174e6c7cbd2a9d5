package client_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/internal/wire"
)

// helloRecorder listens on a socket in a fresh directory and answers one
// hello with OK; hellos carries the hello it got, or nil if the client
// sent nothing before it closed.
func helloRecorder(t *testing.T) (path string, hellos <-chan *wire.ClientHello) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan *wire.ClientHello, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		typ, body, err := wire.NewReader(conn, 1<<20).ReadFrame()
		var h wire.ClientHello
		if err != nil || typ != wire.TypeClientHello || h.DecodeBody(body) != nil {
			ch <- nil
			return
		}
		ch <- &h
		conn.Write(wire.AppendFrame(nil, &wire.ServerHello{Version: wire.LocalVersion, Cluster: "c", Node: "n", MaxMessage: 1 << 20}))
		wire.NewReader(conn, 1<<20).ReadFrame() // until the client closes
	}()
	return path, ch
}

func connectTo(t *testing.T, o client.Options) error {
	t.Helper()
	o.NoReconnect = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, o)
	if err == nil {
		c.Close()
	}
	return err
}

// A socket served by another user than the one the client expects: refused
// before the hello, so the token never reaches it; the error says whose it
// is and what was expected.
func TestForeignSocketGetsNoToken(t *testing.T) {
	me := os.Geteuid()
	expected := me + 54321 // a user that does not serve this socket
	for _, how := range []string{"option", "environment"} {
		t.Run(how, func(t *testing.T) {
			path, hellos := helloRecorder(t)
			o := client.Options{Socket: path, Token: "s3cret"}
			if how == "option" {
				o.ExpectDaemonUID = expected
			} else {
				t.Setenv("WANDIST_DAEMON_UID", strconv.Itoa(expected))
			}
			err := connectTo(t, o)
			var fe *client.ForeignSocketError
			if !errors.Is(err, client.ErrForeignSocket) || !errors.As(err, &fe) {
				t.Fatalf("Connect to a socket of uid %d expecting uid %d: %v, want ErrForeignSocket", me, expected, err)
			}
			if fe.UID != me || fe.Path != path || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "uid "+strconv.Itoa(expected)) {
				t.Fatalf("the error does not name the path, the owner and the expected user: %+v: %v", fe, err)
			}
			if h := <-hellos; h != nil {
				t.Fatalf("the client sent its hello (token %q) to the foreign socket", h.Token)
			}
		})
	}
}

// The daemon's user as expected: the hello and its token go through.
func TestExpectedDaemonUserGetsHello(t *testing.T) {
	path, hellos := helloRecorder(t)
	if err := connectTo(t, client.Options{Socket: path, Token: "s3cret", ExpectDaemonUID: os.Geteuid()}); err != nil {
		t.Fatal(err)
	}
	if h := <-hellos; h == nil || h.Token != "s3cret" {
		t.Fatalf("hello %+v, want the token", h)
	}
}

// A socket file of another user, where this user's process listens: the
// file's owner is checked too.
func TestForeignSocketFileRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give the socket file to another user")
	}
	path, hellos := helloRecorder(t)
	if err := os.Lchown(path, 54321, 54321); err != nil {
		t.Fatal(err)
	}
	err := connectTo(t, client.Options{Socket: path, Token: "s3cret"})
	var fe *client.ForeignSocketError
	if !errors.As(err, &fe) || fe.UID != 54321 || fe.What != "the socket file" {
		t.Fatalf("socket file of uid 54321: %v, want ErrForeignSocket naming it", err)
	}
	if h := <-hellos; h != nil {
		t.Fatal("the client sent its hello to a socket file of another user")
	}
}

// A socket file of the expected user, but another user's process listening
// on it (SO_PEERCRED): refused.
func TestForeignListenerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give the socket file to another user")
	}
	path, hellos := helloRecorder(t)
	if err := os.Lchown(path, 54321, 54321); err != nil {
		t.Fatal(err)
	}
	err := connectTo(t, client.Options{Socket: path, Token: "s3cret", ExpectDaemonUID: 54321})
	var fe *client.ForeignSocketError
	if !errors.As(err, &fe) || fe.UID != 0 || fe.What != "the process listening on it" {
		t.Fatalf("root listening on a socket file of uid 54321, expecting 54321: %v, want ErrForeignSocket naming the listener", err)
	}
	if h := <-hellos; h != nil {
		t.Fatal("the client sent its hello to another user's listener")
	}
}
