package netutil

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

func TestListeningAndPoll(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if !Listening(addr) {
		t.Fatalf("%s: not listening", addr)
	}
	ln.Close()
	if Listening(addr) {
		t.Fatalf("%s: still listening after close", addr)
	}
	n := 0
	if err := Poll(context.Background(), time.Millisecond, "three calls", func() (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Fatalf("Poll: %v after %d calls", err, n)
	}
	boom := errors.New("boom")
	if err := Poll(context.Background(), time.Millisecond, "failure", func() (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Fatalf("Poll: %v, want boom", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Poll(ctx, time.Millisecond, "never", func() (bool, error) { return false, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll: %v, want canceled", err)
	}
}
