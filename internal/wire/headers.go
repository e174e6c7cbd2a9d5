package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Message headers: up to MaxHeaders key/value pairs that travel with a
// message (Send, Data, Deliver), for trace context and the like. They
// travel as one encoded block, opaque to the daemon once checked: a
// uvarint count (1 to MaxHeaders), then each header's key and value as
// strings. A message has headers when its Flags have FlagHeaders; its body
// then ends with the block as a bytes field (see docs/wire-spec.md,
// "Message headers").

// FlagHeaders in the Flags of Send, Data and Deliver says that the body
// ends with a Headers field. The encoders set it from the message's
// Headers (non-empty: set; empty: clear), whatever Flags says.
const FlagHeaders uint64 = 1 << 6

// Bounds of a message's headers.
const (
	MaxHeaders      = 16   // headers per message
	MaxHeaderKey    = 64   // bytes of a key
	MaxHeaderBytes  = 4096 // bytes of all keys and values together
	maxHeaderBlock  = 1 + MaxHeaders*2*2 + MaxHeaderBytes
	headerMinSize   = 2 // an encoded header: two lengths, at least
	headerKeyDetail = "a key is 1 to 64 bytes of a-z, 0-9, '-', '_' and '.'"
)

// ErrBadHeaders is wrapped by the errors of EncodeHeaders and
// CheckHeaders.
var ErrBadHeaders = errors.New("bad message headers")

// Header is one message header.
type Header struct {
	Key   string
	Value string
}

// EncodeHeaders appends the header block of hs to b (nothing if hs is
// empty). It fails, wrapping ErrBadHeaders, if hs breaks a bound: more
// than MaxHeaders, a key that is empty, longer than MaxHeaderKey or has a
// byte other than a-z, 0-9, '-', '_', '.', a key given twice, or keys and
// values of more than MaxHeaderBytes together.
func EncodeHeaders(b []byte, hs []Header) ([]byte, error) {
	if len(hs) == 0 {
		return b, nil
	}
	if len(hs) > MaxHeaders {
		return b, fmt.Errorf("%w: %d headers, at most %d", ErrBadHeaders, len(hs), MaxHeaders)
	}
	total := 0
	for i, h := range hs {
		if err := checkKey(h.Key); err != nil {
			return b, fmt.Errorf("%w: header %d (key %q): %s", ErrBadHeaders, i, h.Key, err)
		}
		for _, o := range hs[:i] {
			if o.Key == h.Key {
				return b, fmt.Errorf("%w: key %q given twice", ErrBadHeaders, h.Key)
			}
		}
		total += len(h.Key) + len(h.Value)
	}
	if total > MaxHeaderBytes {
		return b, fmt.Errorf("%w: keys and values of %d bytes, at most %d", ErrBadHeaders, total, MaxHeaderBytes)
	}
	b = appendUvarint(b, uint64(len(hs)))
	for _, h := range hs {
		b = appendString(b, h.Key)
		b = appendString(b, h.Value)
	}
	return b, nil
}

// checkKey says what is wrong with a header key, or nil.
func checkKey[T string | []byte](k T) error {
	if len(k) == 0 || len(k) > MaxHeaderKey {
		return fmt.Errorf("%d bytes: %s", len(k), headerKeyDetail)
	}
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return fmt.Errorf("byte %q at %d: %s", c, i, headerKeyDetail)
		}
	}
	return nil
}

// ParseHeaders decodes a header block, checking it as CheckHeaders does.
func ParseHeaders(block []byte) ([]Header, error) {
	if len(block) == 0 {
		return nil, nil
	}
	if err := CheckHeaders(block); err != nil {
		return nil, err
	}
	d := newDecoder(0, block)
	hs := make([]Header, d.uvarint("count"))
	for i := range hs {
		hs[i] = Header{Key: d.str("Key"), Value: d.str("Value")}
	}
	return hs, nil
}

// CheckHeaders checks a non-empty header block: well formed and within
// the bounds (see EncodeHeaders). It does not allocate unless it fails.
func CheckHeaders(block []byte) error {
	d := newDecoder(0, block)
	if msg := d.checkHeaders(); msg != "" {
		return fmt.Errorf("%w: %s", ErrBadHeaders, msg)
	}
	return nil
}

// headers decodes the Headers field (a bytes field holding a header
// block) and checks it; the block aliases the body.
func (d *decoder) headers(field string) []byte {
	block := d.bytes(field)
	if d.err != nil {
		return nil
	}
	hd := newDecoder(0, block)
	if msg := hd.checkHeaders(); msg != "" {
		d.fail(field, "%s", msg)
		return nil
	}
	return block
}

// checkHeaders checks the header block that d holds whole; "" if it is
// good, else what is wrong.
func (d *decoder) checkHeaders() string {
	if len(d.body) > maxHeaderBlock {
		return fmt.Sprintf("block of %d bytes, at most %d", len(d.body), maxHeaderBlock)
	}
	n := d.length("count", headerMinSize)
	switch {
	case d.err != nil:
		return reason(d.err)
	case n == 0:
		return "count 0 (a message without headers has no block)"
	case n > MaxHeaders:
		return fmt.Sprintf("%d headers, at most %d", n, MaxHeaders)
	}
	var keys [MaxHeaders][]byte
	total := 0
	for i := range n {
		k, v := d.bytes("Key"), d.bytes("Value")
		if d.err != nil {
			return fmt.Sprintf("header %d: %s", i, reason(d.err))
		}
		if err := checkKey(k); err != nil {
			return fmt.Sprintf("header %d: key %q: %s", i, k, err)
		}
		for _, o := range keys[:i] {
			if string(o) == string(k) {
				return fmt.Sprintf("header %d: key %q given twice", i, k)
			}
		}
		keys[i] = k
		total += len(k) + len(v)
	}
	if total > MaxHeaderBytes {
		return fmt.Sprintf("keys and values of %d bytes, at most %d", total, MaxHeaderBytes)
	}
	if d.left() != 0 {
		return fmt.Sprintf("%d trailing bytes after the last header", d.left())
	}
	return ""
}

// reason is the Reason of a decoder's error.
func reason(err error) string {
	var fe *FrameError
	if errors.As(err, &fe) {
		return strings.TrimPrefix(fe.Reason, Type(0).String()+".") // the block's decoder has no message type
	}
	return err.Error()
}

// headerFlags returns flags with FlagHeaders set if hs is not empty, clear
// if it is.
func headerFlags(flags uint64, hs []byte) uint64 {
	if len(hs) > 0 {
		return flags | FlagHeaders
	}
	return flags &^ FlagHeaders
}
