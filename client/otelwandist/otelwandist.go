// Package otelwandist carries OpenTelemetry trace context across wandist:
// it injects the W3C Trace Context (the traceparent and tracestate
// headers) of a context into a message's headers, and extracts it from a
// received message's headers, so that a trace crosses clusters with the
// messages it follows.
//
// It is a module of its own (github.com/wandist/wandist/client/otelwandist):
// the SDK (github.com/wandist/wandist/client) does not depend on
// OpenTelemetry; a program that uses this package does.
//
// On the sending side:
//
//	err := c.SendGroup(ctx, "orders", payload, otelwandist.WithTraceContext(ctx))
//
// On the receiving side:
//
//	m, _ := mb.Receive(ctx)
//	ctx = otelwandist.Extract(ctx, m.Headers)
//	ctx, span := tracer.Start(ctx, "handle order") // a child of the sender's span
//
// Inject and Extract use the W3C Trace Context propagator
// (propagation.TraceContext); for another propagator (baggage, a
// composite) use it with Carrier directly.
package otelwandist

import (
	"context"

	"go.opentelemetry.io/otel/propagation"

	"github.com/wandist/wandist/client"
)

// TraceContext is the propagator Inject and Extract use: W3C Trace
// Context, the traceparent and tracestate headers.
var TraceContext propagation.TextMapPropagator = propagation.TraceContext{}

// Carrier returns h as a propagation.TextMapCarrier: Set adds or replaces
// a header, Get and Keys read them. (It is h itself: *client.Headers has
// the carrier's methods.)
func Carrier(h *client.Headers) propagation.TextMapCarrier { return h }

// Inject adds the trace context of ctx (its span's, if it has one) to h as
// the traceparent (and, if not empty, tracestate) headers. It adds
// nothing when ctx has no valid span context.
func Inject(ctx context.Context, h *client.Headers) {
	TraceContext.Inject(ctx, Carrier(h))
}

// Extract returns ctx with the remote span context that h carries (see
// trace.SpanContextFromContext), or ctx itself when h carries none or a
// malformed one.
func Extract(ctx context.Context, h client.Headers) context.Context {
	return TraceContext.Extract(ctx, Carrier(&h))
}

// WithTraceContext is a send option that sends the trace context of ctx
// with the message (as Inject does); with no span in ctx it sets no
// headers. It replaces the headers of an earlier WithHeaders option: to
// send other headers too, Inject into them and use client.WithHeaders.
func WithTraceContext(ctx context.Context) client.SendOption {
	var h client.Headers
	Inject(ctx, &h)
	if len(h) == 0 {
		return client.SendOption{}
	}
	return client.WithHeaders(h)
}
