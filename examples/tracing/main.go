// Command tracing shows an OpenTelemetry trace crossing two clusters with
// wandist: a checkout in cluster east calls the "orders" service in
// cluster west; the request carries the trace context in its headers
// (client/otelwandist), so west's span is a child of east's, in the same
// trace, and the reply carries west's span back.
//
// It starts the two clusters itself, one node each, in this process,
// linked over TCP with mutual TLS on loopback, and records the spans in
// memory (a real program would export them, to an OTLP collector say):
//
//	cd examples/tracing && go run .
//
// It is a module of its own, as client/otelwandist is: the wandist module
// does not depend on OpenTelemetry.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/client/otelwandist"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/daemon"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tracing:", err)
		os.Exit(1)
	}
}

// run starts the clusters, makes the traced call, prints the spans and
// returns them (east's first).
func run(ctx context.Context, out io.Writer) ([]sdktrace.ReadOnlySpan, error) {
	dir, err := os.MkdirTemp("", "wandist-tracing-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	eastSock, westSock, stop, err := twoClusters(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer stop()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())

	// West: the orders service.
	wc, err := client.Connect(ctx, client.Options{Socket: westSock, Name: "orders"})
	if err != nil {
		return nil, err
	}
	defer wc.Close()
	mb, err := wc.NewMailbox(ctx)
	if err != nil {
		return nil, err
	}
	if err := mb.Join(ctx, "orders"); err != nil {
		return nil, err
	}
	served := make(chan error, 1)
	go func() {
		served <- mb.Serve(ctx, 1, func(ctx context.Context, m *client.Message) {
			ctx = otelwandist.Extract(ctx, m.Headers) // east's span, as the parent
			ctx, span := tp.Tracer("orders").Start(ctx, "west: place order", trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			_ = m.Reply(ctx, []byte("placed "+string(m.Payload)), otelwandist.WithTraceContext(ctx))
		})
	}()

	// East: the checkout, once east knows the service in west.
	ec, err := client.Connect(ctx, client.Options{Socket: eastSock, Name: "checkout"})
	if err != nil {
		return nil, err
	}
	defer ec.Close()
	if _, err := ec.WaitMembers(ctx, "orders", client.WithCluster("west")); err != nil {
		return nil, err
	}
	cctx, span := tp.Tracer("checkout").Start(ctx, "east: checkout", trace.WithSpanKind(trace.SpanKindClient))
	reply, err := ec.CallGroup(cctx, "orders", []byte("order 42"), otelwandist.WithTraceContext(cctx))
	span.End()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "east got %q from %s\n", reply.Payload, reply.From)
	from := trace.SpanContextFromContext(otelwandist.Extract(ctx, reply.Headers))
	fmt.Fprintf(out, "the reply carries west's span %s of trace %s\n", from.SpanID(), from.TraceID())
	wc.Close()
	if err := <-served; err != nil {
		return nil, err
	}
	spans := rec.Ended()
	if len(spans) == 2 && spans[0].Name() != "east: checkout" {
		spans[0], spans[1] = spans[1], spans[0]
	}
	for _, s := range spans {
		fmt.Fprintf(out, "span %-18q trace %s span %s parent %s\n", s.Name(), s.SpanContext().TraceID(), s.SpanContext().SpanID(), s.Parent().SpanID())
	}
	return spans, nil
}

// twoClusters starts east (accepting over TCP on loopback) and west
// (dialling it), each with a fresh key pinned by the other, waits for
// their link, and returns their sockets and a function that stops them.
func twoClusters(ctx context.Context, dir string) (eastSock, westSock string, stop func(), err error) {
	var ds []*daemon.Daemon
	stop = func() {
		for _, d := range ds {
			d.Close()
		}
	}
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	_, wk, _ := ed25519.GenerateKey(rand.Reader)
	start := func(cluster string, k ed25519.PrivateKey, peer configs.Peer) (*daemon.Daemon, error) {
		c := configs.Default()
		c.Cluster, c.Node, c.Identity = cluster, cluster+"-1", "unused"
		c.Local.Socket = filepath.Join(dir, cluster+".sock")
		c.Listen.TCP = "127.0.0.1:0"
		c.Peers = []configs.Peer{peer}
		d, err := daemon.New(c, daemon.Options{Key: k, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return nil, err
		}
		if err := d.Start(ctx); err != nil {
			return nil, err
		}
		ds = append(ds, d)
		return d, nil
	}
	east, err := start("east", ek, configs.Peer{Cluster: "west", Node: "west-1", Transport: "tcp", Mode: "accept",
		PublicKeys: []ed25519.PublicKey{wk.Public().(ed25519.PublicKey)}})
	if err != nil {
		return "", "", stop, err
	}
	west, err := start("west", wk, configs.Peer{Cluster: "east", Node: "east-1", Transport: "tcp", Mode: "connect",
		Address: east.ListenAddr("tcp"), PublicKeys: []ed25519.PublicKey{ek.Public().(ed25519.PublicKey)}})
	if err != nil {
		stop()
		return "", "", func() {}, err
	}
	if err := west.WaitLink(ctx, "east", "east-1", true); err != nil {
		stop()
		return "", "", func() {}, err
	}
	return filepath.Join(dir, "east.sock"), filepath.Join(dir, "west.sock"), stop, nil
}
