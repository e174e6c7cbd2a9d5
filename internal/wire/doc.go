// Package wire encodes and decodes the frames of wandistd's two protocols:
// the link protocol spoken between daemons of different clusters
// (messages.go, types 0x01-0x3f) and the local protocol spoken between a
// client and its daemon on a Unix socket (local.go, types 0x40-0x7f).
//
// Every frame is an 8-byte header (version, type, flags, body length)
// followed by a body holding one message. AppendFrame encodes a Message;
// Reader reads frames from a stream and Decode (or a message's DecodeBody)
// turns a body back into a Message. The format is specified in
// docs/wire-spec.md.
//
// Decoding never panics and never allocates from an untrusted length: every
// length and count is checked against the bytes left in the body first.
// Malformed input yields a *FrameError that wraps one of the sentinel errors
// (ErrFrameTooLarge, ErrBadVersion, ErrBadFlags, ErrMalformed,
// ErrUnknownType), so callers can test it with errors.Is and errors.As.
//
// The Payload and Headers fields of Data, Send and Deliver alias the
// decoded body: they are valid only as long as the body is (with Reader,
// until the next ReadFrame). Copy them to keep them. Headers is a message's
// header block (headers.go: EncodeHeaders, ParseHeaders), checked against
// its bounds by every decoder.
package wire
