package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func testStreamClose(t *testing.T, e *env) {
	client, server := e.pair(e.opts())
	ctx := ctxTimeout(t, waitLong)
	s, err := client.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	peer, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	// A blocked local Read is released by Close.
	readErr := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		readErr <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("blocked Read after Close: %v, want ErrClosed", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Close did not release a blocked Read")
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	// The peer reads what was written, then end-of-stream.
	got, err := io.ReadAll(peer)
	if err != nil || string(got) != "bye" {
		t.Errorf("peer read %q, %v; want \"bye\", nil", got, err)
	}
	// The connection itself is unaffected.
	roundTrip(t, client, server, "still alive")
}

func testStreamDeadline(t *testing.T, e *env) {
	client, server := e.pair(e.opts())
	ctx := ctxTimeout(t, waitLong)
	s, err := client.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	peer, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	s.SetDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = s.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
		t.Errorf("deadline error %v is not a timeout", err)
	}
	s.SetDeadline(time.Time{})
	if _, err := peer.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		t.Fatalf("Read after clearing the deadline: %v", err)
	}
}

func testPeerClose(t *testing.T, e *env) {
	client, server := e.pair(e.opts())
	ctx := ctxTimeout(t, waitLong)
	s, err := client.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	peer, err := server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	readErr, acceptErr := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := peer.Read(make([]byte, 1))
		readErr <- err
	}()
	go func() {
		_, err := server.AcceptStream(context.Background())
		acceptErr <- err
	}()

	if err := client.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := client.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitDone(t, client, "client")
	if !errors.Is(client.Err(), ErrClosed) {
		t.Errorf("client Err = %v, want ErrClosed", client.Err())
	}
	waitDone(t, server, "server")
	if !errors.Is(server.Err(), ErrPeerClosed) {
		t.Errorf("server Err = %v, want ErrPeerClosed", server.Err())
	}
	for name, ch := range map[string]chan error{"pending Read": readErr, "pending AcceptStream": acceptErr} {
		select {
		case err := <-ch:
			if !errors.Is(err, ErrPeerClosed) {
				t.Errorf("%s: %v, want ErrPeerClosed", name, err)
			}
		case <-time.After(waitLong):
			t.Fatalf("%s not released", name)
		}
	}
	if _, err := client.OpenStream(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("OpenStream after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Conn.Close: %v, want ErrClosed", err)
	}
}

func testIdleTimeout(t *testing.T, e *env) {
	o := e.opts()
	o.KeepAlivePeriod = 100 * time.Millisecond
	o.IdleTimeout = 500 * time.Millisecond
	tr := e.tc.mk(o)
	ln := e.listen(tr)
	addr, silence := e.tc.forward(t, ln.Addr().String())
	client, server := e.connect(tr, ln, addr)
	roundTrip(t, client, server, "before the silence")

	// Keepalives must keep a connection without traffic alive.
	select {
	case <-client.Done():
		t.Fatalf("idle but healthy connection died: %v", client.Err())
	case <-server.Done():
		t.Fatalf("idle but healthy connection died: %v", server.Err())
	case <-time.After(3 * o.IdleTimeout):
	}

	silence()
	start := time.Now()
	waitDone(t, client, "client")
	waitDone(t, server, "server")
	t.Logf("silent peer detected after %v", time.Since(start).Round(time.Millisecond))
	for name, c := range map[string]Conn{"client": client, "server": server} {
		if !errors.Is(c.Err(), ErrIdleTimeout) {
			t.Errorf("%s Err = %v, want ErrIdleTimeout", name, c.Err())
		}
	}
}
