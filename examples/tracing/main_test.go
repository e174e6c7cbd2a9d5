package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The example's trace crosses the clusters: west's span is a child of
// east's, in the same trace. Run it with `go test` here, or `go run .`.
func TestTraceCrossesClusters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	spans, err := run(ctx, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 {
		t.Fatalf("%d spans, want east's and west's:\n%s", len(spans), out.String())
	}
	east, west := spans[0], spans[1]
	if east.Name() != "east: checkout" || west.Name() != "west: place order" {
		t.Fatalf("spans %q and %q", east.Name(), west.Name())
	}
	if west.SpanContext().TraceID() != east.SpanContext().TraceID() {
		t.Fatalf("west's span is in trace %s, east's in %s", west.SpanContext().TraceID(), east.SpanContext().TraceID())
	}
	if west.Parent().SpanID() != east.SpanContext().SpanID() || !west.Parent().IsRemote() {
		t.Fatalf("west's span's parent %s (remote %v), want east's span %s", west.Parent().SpanID(), west.Parent().IsRemote(), east.SpanContext().SpanID())
	}
	if !strings.Contains(out.String(), `east got "placed order 42" from west/west-1/`) ||
		!strings.Contains(out.String(), "the reply carries west's span "+west.SpanContext().SpanID().String()) {
		t.Fatalf("printed:\n%s", out.String())
	}
}
