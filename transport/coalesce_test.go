package transport

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// countingConn counts the writes that reach the connection under TLS.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

func yamuxHeader(typ byte, id, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[1] = typ
	binary.BigEndian.PutUint32(h[4:8], id)
	binary.BigEndian.PutUint32(h[8:12], length)
	return h
}

// trackedConn writes a data frame's header with the start of its body, in
// one TLS record, and batchConn hands all the records of one frame to the
// connection in one write. Other frames go out at once, and every byte
// arrives in order.
func TestTrackedConnCoalescesDataHeader(t *testing.T) {
	a, b := net.Pipe()
	ca := &countingConn{Conn: a}
	sid, cid := newIdentity(t, "server"), newIdentity(t, "client")
	client := tls.Client(&batchConn{Conn: ca}, clientTLS(cid, sid.pin))
	server := tls.Server(b, serverTLS(sid, cid.pin))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := server.Handshake(); err != nil {
			t.Error(err)
		}
	})
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	defer client.Close()
	defer server.Close()

	var got bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&got, server)
	}()
	tc := newTrackedConn(client, ca, 0)
	var want bytes.Buffer
	write := func(p []byte) {
		t.Helper()
		want.Write(p)
		if n, err := tc.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
	}
	step := func(name string, wantWrites int64, frames ...[]byte) {
		t.Helper()
		before := ca.writes.Load()
		for _, f := range frames {
			write(f)
		}
		if n := ca.writes.Load() - before; n != wantWrites {
			t.Errorf("%s: %d writes under TLS, want %d", name, n, wantWrites)
		}
	}
	body := func(n int) []byte { return bytes.Repeat([]byte{byte(n)}, n) }
	step("data frame", 1, yamuxHeader(yamuxTypeData, 1, 100), body(100))
	step("window update (no body)", 1, yamuxHeader(yamuxTypeWindowUpdate, 1, 1<<20))
	step("data frame without body (FIN)", 1, yamuxHeader(yamuxTypeData, 3, 0))
	// A body of several records: still one write.
	step("large data frame", 1, yamuxHeader(yamuxTypeData, 5, 100000), body(100000))
	step("data frame after", 1, yamuxHeader(yamuxTypeData, 1, 7), body(7))

	client.Close()
	<-done
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("the peer read %d bytes, not the %d written in order", got.Len(), want.Len())
	}
}

// A write from outside the batch (TLS answering a key update, say) while a
// batch is open goes out after the batch's records, never ahead of them;
// outside a batch, writes go straight through.
func TestBatchConnKeepsOrder(t *testing.T) {
	a, b := net.Pipe()
	ca := &countingConn{Conn: a}
	bc := &batchConn{Conn: ca}
	var got bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&got, b)
	}()
	bc.begin()
	bc.Write([]byte("one,"))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		bc.Write([]byte("two,")) // another goroutine, while the batch is open
	}()
	<-wrote
	bc.Write([]byte("three,"))
	if n := ca.writes.Load(); n != 0 {
		t.Fatalf("%d writes before flush", n)
	}
	if err := bc.flush(); err != nil {
		t.Fatal(err)
	}
	if n := ca.writes.Load(); n != 1 {
		t.Fatalf("flush: %d writes, want 1", n)
	}
	bc.Write([]byte("four"))
	if n := ca.writes.Load(); n != 2 {
		t.Fatalf("outside a batch: %d writes, want 2", n)
	}
	a.Close()
	<-done
	if got.String() != "one,two,three,four" {
		t.Fatalf("the peer read %q", got.String())
	}
}
