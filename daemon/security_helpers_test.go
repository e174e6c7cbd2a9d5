package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// logRecord is one captured log line.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]slog.Value
}

// logCapture is a slog.Handler that keeps every record, for tests that
// check what a rejection logged.
type logCapture struct {
	mu   *sync.Mutex
	recs *[]logRecord
	with []slog.Attr
}

func newLogCapture() logCapture {
	return logCapture{mu: new(sync.Mutex), recs: new([]logRecord)}
}

func (h logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (h logCapture) Handle(_ context.Context, r slog.Record) error {
	lr := logRecord{level: r.Level, msg: r.Message, attrs: map[string]slog.Value{}}
	for _, a := range h.with {
		lr.attrs[a.Key] = a.Value
	}
	r.Attrs(func(a slog.Attr) bool {
		lr.attrs[a.Key] = a.Value
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, lr)
	h.mu.Unlock()
	return nil
}

func (h logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	h.with = append(slices.Clone(h.with), as...)
	return h
}

func (h logCapture) WithGroup(string) slog.Handler { return h }

// wait returns the first warning for which match is true, waiting for it.
func (h logCapture) wait(t *testing.T, what string, match func(logRecord) bool) logRecord {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		h.mu.Lock()
		for _, r := range *h.recs {
			if r.level >= slog.LevelWarn && match(r) {
				h.mu.Unlock()
				return r
			}
		}
		h.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no warning logged for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling
	}
}

// errAttr returns the error held by a log attribute, or nil.
func (r logRecord) errAttr(key string) error {
	v, ok := r.attrs[key]
	if !ok || v.Kind() != slog.KindAny {
		return nil
	}
	err, _ := v.Any().(error)
	return err
}

// capturing makes n log into a capture; call before n.start.
func (n *node) capturing() logCapture {
	h := newLogCapture()
	n.opts.Logger = slog.New(h)
	return h
}

// rejects reads wandist_handshake_rejections_total{reason}.
func rejects(d *Daemon, reason string) float64 {
	return testutil.ToFloat64(d.metrics.handshakeRejects.WithLabelValues(reason))
}

// waitRejects waits until the rejection count for reason is want.
func waitRejects(t *testing.T, d *Daemon, reason string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); rejects(d, reason) != want; {
		if time.Now().After(deadline) {
			t.Fatalf("handshake rejections %q = %v, want %v", reason, rejects(d, reason), want)
		}
		time.Sleep(5 * time.Millisecond) // polling
	}
}

// expectHangUp reads from c until the daemon closes it; a read timeout
// means it kept the connection open.
func expectHangUp(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the daemon did not close the connection", what)
	}
}

// recordingProxy forwards TCP connections to target and records the bytes
// that the first client sent.
type recordingProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	first  bytes.Buffer
	n      int // connections seen
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startRecordingProxy(t *testing.T, target string) *recordingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{ln: ln, target: target}
	p.wg.Go(p.acceptLoop)
	t.Cleanup(p.close)
	return p
}

func (p *recordingProxy) addr() string { return p.ln.Addr().String() }

func (p *recordingProxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.n++
		first := p.n == 1
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Go(func() {
			var w io.Writer = s
			if first {
				w = io.MultiWriter(s, lockedWriter{&p.mu, &p.first})
			}
			io.Copy(w, c)
			s.Close()
		})
		p.wg.Go(func() {
			io.Copy(c, s)
			c.Close()
		})
	}
}

// recorded returns what the first client sent so far.
func (p *recordingProxy) recorded() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.first.Bytes())
}

func (p *recordingProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(b)
}

// linkPeer dials target as the pinned node `as` over transport trp and
// completes the link handshake by hand, so that a test can then misbehave
// on the link. It returns the connection.
func linkPeer(t *testing.T, trp transport.Transport, tr string, target, as *node) transport.Conn {
	t.Helper()
	conn, ctl, r := handshakeAs(t, trp, tr, target, as)
	// Answer the daemon's control traffic (pings) so that the link stays up.
	go func() {
		for {
			typ, body, err := r.ReadFrame()
			if err != nil {
				return
			}
			if typ == wire.TypePing {
				var p wire.Ping
				if p.DecodeBody(body) == nil {
					ctl.Write(wire.AppendFrame(nil, &wire.Pong{Echo: p.Echo}))
				}
			}
		}
	}()
	return conn
}
