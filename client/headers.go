package client

import (
	"fmt"

	"github.com/wandist/wandist/internal/wire"
)

// Header is one message header.
type Header = wire.Header

// Headers are the headers of a message: key/value pairs sent with it and
// read on delivery (Message.Headers), for trace context (see the
// client/otelwandist module) and the like. Bounds, checked at send time
// (ErrBadRequest saying which was broken):
//   - at most MaxHeaders (16) headers;
//   - a key is 1 to MaxHeaderKey (64) bytes of a-z, 0-9, '-', '_' and
//     '.' (lower case, as in gRPC metadata), each key at most once;
//   - keys and values together at most MaxHeaderBytes (4096) bytes; a
//     value may hold any bytes, and be empty.
//
// The order of the headers is kept. *Headers is an OpenTelemetry
// propagation.TextMapCarrier (Get, Set, Keys) without importing
// OpenTelemetry.
type Headers []Header

// Bounds of a message's headers (see Headers).
const (
	MaxHeaders     = wire.MaxHeaders
	MaxHeaderKey   = wire.MaxHeaderKey
	MaxHeaderBytes = wire.MaxHeaderBytes
)

// Get returns the value of key, "" if there is none.
func (h Headers) Get(key string) string {
	for _, x := range h {
		if x.Key == key {
			return x.Value
		}
	}
	return ""
}

// Lookup returns the value of key and whether it is there.
func (h Headers) Lookup(key string) (string, bool) {
	for _, x := range h {
		if x.Key == key {
			return x.Value, true
		}
	}
	return "", false
}

// Set sets the value of key, replacing the one it has or appending it.
func (h *Headers) Set(key, value string) {
	for i := range *h {
		if (*h)[i].Key == key {
			(*h)[i].Value = value
			return
		}
	}
	*h = append(*h, Header{Key: key, Value: value})
}

// Keys returns the keys, in order.
func (h Headers) Keys() []string {
	keys := make([]string, len(h))
	for i, x := range h {
		keys[i] = x.Key
	}
	return keys
}

// Check reports whether h keeps the bounds (see Headers): nil, or an
// error (ErrBadRequest) saying which it breaks.
func (h Headers) Check() error {
	_, err := h.encode()
	return err
}

// encode returns the header block of h (nil if h is empty).
func (h Headers) encode() ([]byte, error) {
	b, err := wire.EncodeHeaders(nil, h)
	if err != nil {
		return nil, &Error{Kind: ErrBadRequest, Message: err.Error()}
	}
	return b, nil
}

// WithHeaders sends the message with headers h (copied: h may be changed
// after the call). It works on every send, Call and Reply; a later
// WithHeaders replaces an earlier one.
func WithHeaders(h Headers) SendOption { return SendOption{set: optHeaders, headers: h} }

// parseHeaders returns the headers of a delivery's header block.
func parseHeaders(block []byte) Headers {
	if len(block) == 0 {
		return nil
	}
	hs, err := wire.ParseHeaders(block) // checked by the Deliver's decoder already
	if err != nil {
		return nil
	}
	return hs
}

// errNoHeaders answers a send with headers to a daemon that cannot carry
// them.
var errNoHeaders = &Error{Kind: ErrBadRequest, Message: fmt.Sprintf("message headers need local protocol version %d; the daemon speaks %d (upgrade it)",
	wire.LocalVersion, wire.LocalVersion2)}
