package wire

// Batch frames carry a run of messages that share every field but the
// payload: one header, then the payloads, each a uvarint length and its
// bytes, to the end of the body. A sender extends the last batch frame of
// its write buffer while the next message has the same header
// (AppendBatchPayload), so a stream of small messages to one destination
// costs one header, one decode and one routing decision per frame, not per
// message. The receiver handles a batch exactly as that many single
// frames, in order.

// MaxBatchBody is the body size from which a sender starts a new batch
// frame rather than extending the last one: it bounds how much one frame
// holds up the stream and what a receiver buffers for it.
const MaxBatchBody = 64 << 10

// SendBatch is a run of quiet one-way sends with the same target, options
// and Req (StatusOK is not answered; each message refused is answered by a
// Result with Req, like a quiet Send). Flags must have FlagQuiet and not
// FlagDurable; there is no Corr (requests and replies go alone).
type SendBatch struct {
	SendHeader
	Strategy uint8
	// Payloads are the encoded payloads (see Batch), at least one.
	Payloads Batch
}

// Batch is the payload list of a batch frame: each payload a uvarint length
// and its bytes. Payloads decoded from a frame alias its body.
type Batch []byte

// Append returns b with payload p added.
func (b Batch) Append(p []byte) Batch { return appendBytes(b, p) }

// Count returns the number of payloads (b was checked by DecodeBody, or
// built with Append).
func (b Batch) Count() int {
	n := 0
	for range b.All() {
		n++
	}
	return n
}

// Next returns the first payload of b (which DecodeBody checked, or
// Append built) and the rest of the list; on an empty or bad list it
// returns nil and an empty rest.
func (b Batch) Next() ([]byte, Batch) {
	// The common cases first: a length of one byte (a payload under 128
	// bytes) or two (under 16 KiB; b[1] != 0: minimal) that b holds.
	switch {
	case len(b) > 0 && b[0] < 0x80:
		switch n := 1 + int(b[0]); {
		case n == 1:
			return nil, b[1:] // empty, as the decoder returns it
		case n <= len(b):
			return b[1:n:n], b[n:]
		}
		return nil, nil
	case len(b) > 1 && b[1] != 0 && b[1] < 0x80:
		if n := 2 + (int(b[0]&0x7f) | int(b[1])<<7); n <= len(b) {
			return b[2:n:n], b[n:]
		}
		return nil, nil
	}
	d := decoder{body: b}
	p := d.bytes("")
	if d.err != nil {
		return nil, nil
	}
	return p, b[d.off:]
}

// All yields the payloads in order.
func (b Batch) All() func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for rest := b; len(rest) > 0; {
			var p []byte
			if p, rest = rest.Next(); p == nil && rest == nil || !yield(p) {
				return
			}
		}
	}
}

// Type returns TypeSendBatch.
func (*SendBatch) Type() Type { return TypeSendBatch }

// AppendBody appends the encoded body.
func (m *SendBatch) AppendBody(b []byte) []byte {
	b = m.SendHeader.appendBody(b)
	b = append(b, m.Strategy)
	return append(b, m.Payloads...)
}

// DecodeBody decodes body into m; m.Payloads aliases body.
func (m *SendBatch) DecodeBody(body []byte) error {
	d := newDecoder(TypeSendBatch, body)
	m.SendHeader.decode(&d)
	m.Strategy = d.u8("Strategy")
	m.Payloads = d.batch()
	return d.finish()
}

// AppendFrame appends m as a frame (see (*Data).AppendFrame).
func (m *SendBatch) AppendFrame(dst []byte) []byte {
	dst, start := beginFrame(dst, TypeSendBatch)
	return endFrame(m.AppendBody(dst), start)
}

// Send returns one message of the batch: its header with payload p.
func (m *SendBatch) Send(p []byte) Send {
	return Send{SendHeader: m.SendHeader, Strategy: m.Strategy, Payload: p}
}

// SameHeader reports whether s could go in batch m: every field but the
// payload (and Req) equal, and no Corr or Headers.
func (m *SendBatch) SameHeader(s *Send) bool {
	return s.Corr == 0 && len(s.Headers) == 0 && m.From == s.From && m.Flags == s.Flags && m.TTL == s.TTL && m.Mailbox == s.Mailbox &&
		m.Strategy == s.Strategy && m.Group == s.Group && m.Cluster == s.Cluster && m.Node == s.Node && m.Key == s.Key
}

// SendBatchOf returns the header of a batch that starts with s.
func SendBatchOf(s *Send) SendBatch {
	return SendBatch{SendHeader: s.SendHeader, Strategy: s.Strategy}
}

// AppendBatchPayload appends payload p to the batch frame that starts at
// dst[start:] and ends dst, and updates the frame's length.
func AppendBatchPayload(dst []byte, start int, p []byte) []byte {
	return endFrame(appendBytes(dst, p), start)
}

// batch decodes the rest of the body as a payload list of at least one
// payload.
func (d *decoder) batch() Batch {
	if d.err != nil {
		return nil
	}
	if d.left() == 0 {
		d.fail("Payloads", "no payload: a batch holds at least one")
		return nil
	}
	start := d.off
	for i := 0; d.off < len(d.body); i++ {
		if _, rest := Batch(d.body[d.off:]).Next(); rest != nil {
			d.off = len(d.body) - len(rest)
			continue
		}
		d.list, d.idx = "Payloads", i
		d.bytes("") // a bad payload: the decoder says what and where
		if d.err != nil {
			return nil
		}
	}
	d.list = ""
	return Batch(d.body[start:d.off:d.off])
}

// DeliverBatch is a run of plain deliveries to one mailbox from one sender
// and group, with the same Flags (none, or FlagHigh) and Stream, and
// consecutive Seqs (or all 0): no Corr or TTL (a request, a reply, a
// message with a TTL or a durable one goes alone, in a Deliver). The client
// handles it exactly as that many Delivers, in order, with Seq, Seq+1, ...
type DeliverBatch struct {
	Mailbox     uint64
	FromCluster string
	FromNode    string
	From        uint64
	Group       string
	Flags       uint64
	Stream      uint64
	Seq         uint64 // of the first message; 0: none
	Floor       uint64 // as Deliver's
	// Payloads are the encoded payloads (see Batch), at least one.
	Payloads Batch
}

// Type returns TypeDeliverBatch.
func (*DeliverBatch) Type() Type { return TypeDeliverBatch }

// AppendBody appends the encoded body.
func (m *DeliverBatch) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Mailbox)
	b = appendString(b, m.FromCluster)
	b = appendString(b, m.FromNode)
	b = appendUvarint(b, m.From)
	b = appendString(b, m.Group)
	b = appendUvarint(b, m.Flags)
	b = appendUvarint(b, m.Stream)
	b = appendUvarint(b, m.Seq)
	b = appendUvarint(b, m.Floor)
	return append(b, m.Payloads...)
}

// DecodeBody decodes body into m; m.Payloads aliases body.
func (m *DeliverBatch) DecodeBody(body []byte) error {
	d := newDecoder(TypeDeliverBatch, body)
	m.Mailbox = d.uvarint("Mailbox")
	m.FromCluster = d.strReuse("FromCluster", m.FromCluster)
	m.FromNode = d.strReuse("FromNode", m.FromNode)
	m.From = d.uvarint("From")
	m.Group = d.strReuse("Group", m.Group)
	m.Flags = d.uvarint("Flags")
	m.Stream = d.uvarint("Stream")
	m.Seq = d.uvarint("Seq")
	m.Floor = d.uvarint("Floor")
	m.Payloads = d.batch()
	return d.finish()
}

// AppendFrame appends m as a frame (see (*Data).AppendFrame).
func (m *DeliverBatch) AppendFrame(dst []byte) []byte {
	dst, start := beginFrame(dst, TypeDeliverBatch)
	return endFrame(m.AppendBody(dst), start)
}

// Deliver returns message i (from 0) of the batch: its header with payload p.
func (m *DeliverBatch) Deliver(i int, p []byte) Deliver {
	d := Deliver{Mailbox: m.Mailbox, FromCluster: m.FromCluster, FromNode: m.FromNode, From: m.From, Group: m.Group,
		Flags: m.Flags, Stream: m.Stream, Floor: m.Floor, Payload: p}
	if m.Seq != 0 {
		d.Seq = m.Seq + uint64(i)
	}
	return d
}

// Batchable reports whether d may go in a DeliverBatch: no Corr, TTL or
// Headers, and no flag but FlagHigh.
func (d *Deliver) Batchable() bool {
	return d.Corr == 0 && d.Flags&^FlagHigh == 0 && d.TTL == 0 && len(d.Headers) == 0
}

// SameHeader reports whether d (Batchable) could follow the n messages of
// batch m.
func (m *DeliverBatch) SameHeader(d *Deliver, n int) bool {
	return m.Mailbox == d.Mailbox && m.From == d.From && m.Group == d.Group && m.FromNode == d.FromNode && m.FromCluster == d.FromCluster &&
		m.Flags == d.Flags && m.Stream == d.Stream && (m.Seq == 0 && d.Seq == 0 || m.Seq != 0 && d.Seq == m.Seq+uint64(n))
}

// DeliverBatchOf returns the header of a batch that starts with d.
func DeliverBatchOf(d *Deliver) DeliverBatch {
	return DeliverBatch{Mailbox: d.Mailbox, FromCluster: d.FromCluster, FromNode: d.FromNode, From: d.From, Group: d.Group,
		Flags: d.Flags, Stream: d.Stream, Seq: d.Seq, Floor: d.Floor}
}

// DataBatch is a run of Data messages of one lane with consecutive Seqs
// (or all at-most-once, Seq 0) and the same Flags, To, From and Group, and
// no TTL or Corr. The receiver handles it exactly as that many Data frames
// with Seq, Seq+1, ... (all 0 when Seq is 0), in order.
type DataBatch struct {
	Seq   uint64 // of the first message; 0: at-most-once messages
	Flags uint64
	To    uint64
	From  uint64
	Group string
	// Payloads are the encoded payloads (see Batch), at least one.
	Payloads Batch
}

// Type returns TypeDataBatch.
func (*DataBatch) Type() Type { return TypeDataBatch }

// AppendBody appends the encoded body.
func (m *DataBatch) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Seq)
	b = appendUvarint(b, m.Flags)
	b = appendUvarint(b, m.To)
	b = appendUvarint(b, m.From)
	b = appendString(b, m.Group)
	return append(b, m.Payloads...)
}

// DecodeBody decodes body into m; m.Payloads aliases body.
func (m *DataBatch) DecodeBody(body []byte) error {
	d := newDecoder(TypeDataBatch, body)
	m.Seq = d.uvarint("Seq")
	m.Flags = d.uvarint("Flags")
	m.To = d.uvarint("To")
	m.From = d.uvarint("From")
	m.Group = d.strReuse("Group", m.Group)
	m.Payloads = d.batch()
	return d.finish()
}

// AppendFrame appends m as a frame (see (*Data).AppendFrame).
func (m *DataBatch) AppendFrame(dst []byte) []byte {
	dst, start := beginFrame(dst, TypeDataBatch)
	return endFrame(m.AppendBody(dst), start)
}
