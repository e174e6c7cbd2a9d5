package proxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echo starts an echo server and returns its address.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, s string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(s + "\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func TestCutResetsAndHeals(t *testing.T) {
	p, err := NewTCP("127.0.0.1:0", echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "one"); err != nil || got != "one\n" {
		t.Fatalf("before the cut: %q %v", got, err)
	}
	p.SetCut(true)
	if _, err := roundTrip(c, r, "two"); err == nil {
		t.Fatal("a connection across a cut path still works")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		r2 := bufio.NewReader(c2)
		if _, err := roundTrip(c2, r2, "three"); err == nil {
			t.Fatal("a new connection got through a cut path")
		}
		c2.Close()
	}
	p.SetCut(false)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, bufio.NewReader(c3), "four"); err != nil || got != "four\n" {
		t.Fatalf("after healing: %q %v", got, err)
	}
}
