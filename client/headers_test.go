package client_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/internal/wire"
)

func TestHeadersCarrier(t *testing.T) {
	var h client.Headers
	h.Set("traceparent", "a")
	h.Set("tracestate", "b")
	h.Set("traceparent", "c") // replaces
	if got := h.Get("traceparent"); got != "c" {
		t.Errorf("Get = %q", got)
	}
	if _, ok := h.Lookup("none"); ok || h.Get("none") != "" {
		t.Error("a missing key is found")
	}
	if got := h.Keys(); !slices.Equal(got, []string{"traceparent", "tracestate"}) {
		t.Errorf("Keys = %v", got)
	}
	if err := h.Check(); err != nil {
		t.Error(err)
	}
}

// Headers travel with a send, an async send among batched ones, a Call
// and its Reply; a message without headers has none.
func TestHeadersDelivered(t *testing.T) {
	socket, stop := localDaemon()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := client.Headers{{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, {Key: "empty", Value: ""}}
	if err := c.Send(ctx, mb.Addr(), []byte("one"), client.WithHeaders(h)); err != nil {
		t.Fatal(err)
	}
	// Async: plain sends around one with headers (plain ones are batched).
	to := client.Target{Addr: mb.Addr()}
	for i, opts := range [][]client.SendOption{nil, nil, {client.WithHeaders(client.Headers{{Key: "n", Value: "2"}})}, nil} {
		if err := c.SendAsync(to, []byte{byte('a' + i)}, opts...); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		payload string
		h       client.Headers
	}{{"one", h}, {"a", nil}, {"b", nil}, {"c", client.Headers{{Key: "n", Value: "2"}}}, {"d", nil}}
	for _, w := range want {
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Payload) != w.payload || !slices.Equal(m.Headers, w.h) {
			t.Fatalf("received %q with headers %v, want %q with %v", m.Payload, m.Headers, w.payload, w.h)
		}
	}
	// Call and Reply, each with its own headers.
	go func() {
		m, err := mb.Receive(ctx)
		if err != nil {
			return
		}
		_ = m.Reply(ctx, []byte("pong:"+m.Headers.Get("req")), client.WithHeaders(client.Headers{{Key: "rep", Value: "yes"}}))
	}()
	r, err := c.Call(ctx, client.Target{Addr: mb.Addr()}, []byte("ping"), client.WithHeaders(client.Headers{{Key: "req", Value: "42"}}))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Payload) != "pong:42" || r.Headers.Get("rep") != "yes" || len(r.Headers) != 1 {
		t.Fatalf("reply %q with headers %v", r.Payload, r.Headers)
	}
}

// Headers that break a bound fail at send time with ErrBadRequest saying
// what is wrong, and nothing is sent.
func TestHeadersRefusedAtSend(t *testing.T) {
	socket, stop := localDaemon()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var many client.Headers
	for i := range client.MaxHeaders + 1 {
		many.Set("k"+string(rune('a'+i)), "v")
	}
	for _, bad := range []struct {
		h    client.Headers
		want string
	}{
		{many, "17 headers, at most 16"},
		{client.Headers{{Key: "Traceparent", Value: "x"}}, `key "Traceparent"): byte 'T' at 0`},
		{client.Headers{{Key: strings.Repeat("k", client.MaxHeaderKey+1)}}, "65 bytes"},
		{client.Headers{{Key: "a"}, {Key: "a"}}, `key "a" given twice`},
		{client.Headers{{Key: "big", Value: strings.Repeat("v", client.MaxHeaderBytes)}}, "at most 4096"},
	} {
		opt := client.WithHeaders(bad.h)
		for name, send := range map[string]func() error{
			"Send":      func() error { return c.Send(ctx, mb.Addr(), []byte("bad"), opt) },
			"SendAsync": func() error { return c.SendAsync(client.Target{Addr: mb.Addr()}, []byte("bad"), opt) },
			"Call":      func() error { _, err := c.Call(ctx, client.Target{Addr: mb.Addr()}, []byte("bad"), opt); return err },
		} {
			err := send()
			if !errors.Is(err, client.ErrBadRequest) || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("%s with %d headers: %v, want ErrBadRequest saying %q", name, len(bad.h), err, bad.want)
			}
		}
		if err := bad.h.Check(); !errors.Is(err, client.ErrBadRequest) {
			t.Errorf("Check: %v", err)
		}
	}
	if err := c.Send(ctx, mb.Addr(), []byte("good")); err != nil {
		t.Fatal(err)
	}
	if m, err := mb.Receive(ctx); err != nil || string(m.Payload) != "good" {
		t.Fatalf("first message received: %v, %v (want the good one: the bad ones were never sent)", m, err)
	}
}

// A daemon of local protocol version 2 refuses the version-3 hello; the
// client says hello again in version 2, and then refuses sends with
// headers (the daemon could not carry them) while others work.
func TestHeadersOldDaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	versions := make(chan uint64, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := wire.NewReader(conn, 1<<20)
				_, body, err := r.ReadFrame()
				var h wire.ClientHello
				if err != nil || h.DecodeBody(body) != nil {
					return
				}
				versions <- h.Version
				sh := &wire.ServerHello{Version: wire.LocalVersion2, Cluster: "c", Node: "n", MaxMessage: 1 << 20}
				if h.Version != wire.LocalVersion2 {
					sh.Status, sh.Message = wire.StatusBadRequest, "local protocol version 3 not supported (this daemon speaks 2)"
				}
				conn.Write(wire.AppendFrame(nil, sh))
				if sh.Status == wire.StatusOK {
					for {
						if _, _, err := r.ReadFrame(); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Socket: path, NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a, b := <-versions, <-versions; a != wire.LocalVersion || b != wire.LocalVersion2 {
		t.Fatalf("hellos in versions %d, %d; want %d then %d", a, b, wire.LocalVersion, wire.LocalVersion2)
	}
	to := client.Target{Group: "g"}
	err = c.SendAsync(to, []byte("x"), client.WithHeaders(client.Headers{{Key: "a", Value: "b"}}))
	if !errors.Is(err, client.ErrBadRequest) || !strings.Contains(err.Error(), "version") {
		t.Fatalf("a send with headers to a version-2 daemon: %v", err)
	}
	if err := c.SendAsync(to, []byte("x")); err != nil {
		t.Fatalf("a send without headers: %v", err)
	}
}
