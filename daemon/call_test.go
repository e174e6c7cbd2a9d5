package daemon

import (
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
)

// Call across two daemons: the reply comes back to the caller; a server
// that never answers yields a timeout matching the deadline, and leaves
// nothing behind.
func TestCallAcrossDaemons(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, west := pair(t, tr)
		srv := subscribe(t, west, "echo", east)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		served := make(chan error, 1)
		go func() {
			served <- srv.Serve(ctx, 4, func(ctx context.Context, m *client.Message) {
				if string(m.Payload) == "ignore" {
					return // never answers
				}
				if err := m.Reply(ctx, append([]byte("re:"), m.Payload...)); err != nil {
					t.Errorf("reply: %v", err)
				}
			})
		}()
		c := connect(t, east)
		for i := 0; i < 20; i++ {
			rep, err := c.CallGroup(ctxT(t, 5*time.Second), "echo", []byte("ping"))
			if err != nil || string(rep.Payload) != "re:ping" || rep.From != srv.Addr() {
				t.Fatalf("call %d: %v %+v", i, err, rep)
			}
		}
		before := runtime.NumGoroutine()
		start := time.Now()
		tctx, tcancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := c.CallGroup(tctx, "echo", []byte("ignore"))
		tcancel()
		var ne net.Error
		if !errors.Is(err, client.ErrTimeout) || !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("unanswered call: %v, want a timeout", err)
		}
		if el := time.Since(start); el < 300*time.Millisecond {
			t.Fatalf("the timeout came before the deadline (%v)", el)
		}
		if after := runtime.NumGoroutine(); after > before+2 {
			t.Fatalf("goroutines grew from %d to %d after an unanswered call", before, after)
		}
		cancel()
		<-served
	})
}

// A Call's request is quiet (the daemon answers it only if it fails), yet a
// refused request still fails the Call at once, with the daemon's reason,
// and the failure is the Call's alone: a Flush after it reports nothing.
func TestCallFailsAtOnce(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		east, _ := pair(t, tr)
		c := connect(t, east)
		_, err := c.CallGroup(ctxT(t, 10*time.Second), "nobody-joined", []byte("x"))
		var ce *client.Error
		if !errors.As(err, &ce) || errors.Is(err, client.ErrTimeout) {
			t.Fatalf("call to a group without members: %v, want the daemon's refusal", err)
		}
		if err := c.Flush(ctxT(t, 5*time.Second)); err != nil {
			t.Fatalf("Flush after a refused Call: %v", err)
		}
	})
}
