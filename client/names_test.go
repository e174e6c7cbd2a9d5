package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/groups"
)

func TestEnumStrings(t *testing.T) {
	for _, c := range []struct {
		v    fmt.Stringer
		want string
	}{
		{client.Closest, "closest"}, {client.Random, "random"}, {client.RoundRobin, "round-robin"},
		{client.LeastBacklog, "least-backlog"}, {client.ByKey, "key"}, {client.Broadcast, "broadcast"},
		{client.Strategy(9), "Strategy(9)"},
		{client.Reliable, "reliable"}, {client.AtMostOnce, "at-most-once"}, {client.Durable, "durable"},
		{client.Mode(7), "Mode(7)"},
		{client.Joined, "joined"}, {client.Left, "left"}, {client.Reset, "reset"}, {client.EventOp(0), "EventOp(0)"},
		{client.Event{Op: client.Joined, Member: client.Addr{Cluster: "c", Node: "n", Mailbox: 3}}, "joined c/n/3"},
	} {
		if got := c.v.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.v, got, c.want)
		}
		if got := fmt.Sprint(c.v); got != c.want {
			t.Errorf("fmt.Sprint(%#v) = %q, want %q", c.v, got, c.want)
		}
	}
	// Every strategy's and mode's name parses back to it.
	for s := client.Closest; s <= client.Broadcast; s++ {
		if got, err := client.ParseStrategy(s.String()); err != nil || got != s {
			t.Errorf("ParseStrategy(%q) = %v, %v", s.String(), got, err)
		}
	}
	for m := client.Reliable; m <= client.Durable; m++ {
		if got, err := client.ParseMode(m.String()); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := client.ParseStrategy("nearest"); err == nil || !errContains(err, `"nearest"`) {
		t.Errorf("ParseStrategy(nearest): %v", err)
	}
}

// client.KeyHash is the daemon's hash (groups.KeyHash), with the values
// docs/wire-spec.md lists.
func TestKeyHash(t *testing.T) {
	for key, want := range map[string]uint64{"": 0xcbf29ce484222325, "a": 0xaf63dc4c8601ec8c, "customer-42": 0x1e1b8c70eb18f59e} {
		if got := client.KeyHash(key); got != want || got != groups.KeyHash(key) {
			t.Errorf("KeyHash(%q) = %#x, want %#x", key, got, want)
		}
	}
	if got, want := client.Partition("customer-42", 8), int(0x1e1b8c70eb18f59e%8); got != want {
		t.Errorf("Partition = %d, want %d", got, want)
	}
}

// Serve returns nil when the client is closed, and when its mailbox is.
func TestServeReturnsNilOnClose(t *testing.T) {
	socket, stop := localDaemon()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, closeMailbox := range []bool{false, true} {
		c, err := client.Connect(ctx, client.Options{Socket: socket})
		if err != nil {
			t.Fatal(err)
		}
		mb, err := c.NewMailbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		got := make(chan struct{}, 1)
		go func() {
			served <- mb.Serve(ctx, 1, func(context.Context, *client.Message) { got <- struct{}{} })
		}()
		if err := c.Send(ctx, mb.Addr(), []byte("x")); err != nil {
			t.Fatal(err)
		}
		<-got // Serve runs
		if closeMailbox {
			err = mb.Close(ctx)
		} else {
			err = c.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("close mailbox %v: Serve returned %v, want nil", closeMailbox, err)
			}
		case <-ctx.Done():
			t.Fatal("Serve did not return after Close")
		}
		c.Close()
	}
	// A context that ends is reported.
	c, err := client.Connect(ctx, client.Options{Socket: socket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	scancel()
	if err := mb.Serve(sctx, 1, func(context.Context, *client.Message) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve with a cancelled context: %v", err)
	}
}

// A client whose connection is lost for good (NoReconnect) makes Serve
// return ErrUnavailable, not nil.
func TestServeReportsLostConnection(t *testing.T) {
	socket, stop := localDaemon()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, client.Options{Socket: socket, NoReconnect: true})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	defer c.Close()
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- mb.Serve(ctx, 1, func(context.Context, *client.Message) {}) }()
	stop()
	select {
	case err := <-served:
		if !errors.Is(err, client.ErrUnavailable) {
			t.Errorf("Serve after the daemon stopped: %v, want ErrUnavailable", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return after the daemon stopped")
	}
}

func errContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}
