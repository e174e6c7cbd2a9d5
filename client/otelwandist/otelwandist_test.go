package otelwandist_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/client/otelwandist"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
)

// sampled is a span context as a tracer would start one.
func sampled(t *testing.T) trace.SpanContext {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, err := trace.ParseTraceState("congo=t61rcWkgMzE")
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts})
}

func TestInjectExtract(t *testing.T) {
	sc := sampled(t)
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	var h client.Headers
	otelwandist.Inject(ctx, &h)
	if got := h.Get("traceparent"); got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent %q", got)
	}
	if got := h.Get("tracestate"); got != "congo=t61rcWkgMzE" {
		t.Fatalf("tracestate %q", got)
	}
	if err := h.Check(); err != nil {
		t.Fatalf("injected headers break the bounds: %v", err)
	}
	got := trace.SpanContextFromContext(otelwandist.Extract(context.Background(), h))
	if !got.IsRemote() || got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || got.TraceState().String() != "congo=t61rcWkgMzE" {
		t.Fatalf("extracted %+v", got)
	}
	// Nothing to carry: no headers, and nothing extracted from none.
	var none client.Headers
	otelwandist.Inject(context.Background(), &none)
	if len(none) != 0 {
		t.Fatalf("a context without a span injected %v", none)
	}
	if trace.SpanContextFromContext(otelwandist.Extract(context.Background(), nil)).IsValid() {
		t.Fatal("a span context extracted from no headers")
	}
	bad := client.Headers{{Key: "traceparent", Value: "not-a-traceparent"}}
	if trace.SpanContextFromContext(otelwandist.Extract(context.Background(), bad)).IsValid() {
		t.Fatal("a span context extracted from a malformed traceparent")
	}
}

// The trace context injected on east arrives on west, across a real link,
// with the message: extracted there, it has the same trace ID.
func TestTraceCrossesClusters(t *testing.T) {
	eastSock, westSock := twoClusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	west, err := client.Connect(ctx, client.Options{Socket: westSock})
	if err != nil {
		t.Fatal(err)
	}
	defer west.Close()
	mb, err := west.NewMailbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Join(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	east, err := client.Connect(ctx, client.Options{Socket: eastSock})
	if err != nil {
		t.Fatal(err)
	}
	defer east.Close()
	if _, err := east.WaitMembers(ctx, "orders", client.WithCluster("west")); err != nil {
		t.Fatal(err)
	}
	sc := sampled(t)
	sctx := trace.ContextWithSpanContext(ctx, sc)
	if err := east.SendGroup(ctx, "orders", []byte("order 1"), otelwandist.WithTraceContext(sctx)); err != nil {
		t.Fatal(err)
	}
	m, err := mb.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := trace.SpanContextFromContext(otelwandist.Extract(ctx, m.Headers))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() || !got.IsRemote() {
		t.Fatalf("west extracted %v/%v (sampled %v), want trace %v span %v", got.TraceID(), got.SpanID(), got.IsSampled(), sc.TraceID(), sc.SpanID())
	}
}

// twoClusters starts east (accepting over TCP on loopback) and west
// (dialling it), linked, and returns their sockets.
func twoClusters(t *testing.T) (eastSock, westSock string) {
	t.Helper()
	dir := t.TempDir()
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	_, wk, _ := ed25519.GenerateKey(rand.Reader)
	node := func(cluster string, k ed25519.PrivateKey, peer configs.Peer) *daemon.Daemon {
		c := configs.Default()
		c.Cluster, c.Node, c.Identity = cluster, cluster+"-1", "unused"
		c.Local.Socket = filepath.Join(dir, cluster+".sock")
		c.Listen.TCP = "127.0.0.1:0"
		c.Peers = []configs.Peer{peer}
		d, err := daemon.New(c, daemon.Options{Key: k, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	east := node("east", ek, configs.Peer{Cluster: "west", Node: "west-1", Transport: "tcp", Mode: "accept",
		PublicKeys: []ed25519.PublicKey{wk.Public().(ed25519.PublicKey)}})
	west := node("west", wk, configs.Peer{Cluster: "east", Node: "east-1", Transport: "tcp", Mode: "connect",
		Address: east.ListenAddr("tcp"), PublicKeys: []ed25519.PublicKey{ek.Public().(ed25519.PublicKey)}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := west.WaitLink(ctx, "east", "east-1", true); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "east.sock"), filepath.Join(dir, "west.sock")
}
