package wire

// Pipes (docs/wire-spec.md, "Pipes"): byte streams between two nodes that
// a relay carries, multiplexed on one pipes stream per side of a link.

// PipeOpen opens a pipe. From the dialer to the relay, Cluster and Node
// name the target; from the relay to the target, the origin.
type PipeOpen struct {
	ID      uint64 // odd if the sender dialled the link, even if it accepted it
	Cluster string
	Node    string
}

// PipeData carries bytes of a pipe, in order.
type PipeData struct {
	ID   uint64
	Data []byte // aliases the frame buffer after Decode: copy it to keep it
}

// PipeClose ends a pipe: the sender sends nothing more on it and drops
// what comes for it.
type PipeClose struct {
	ID     uint64
	Code   uint8  // PipeClosed, or why the pipe was refused or cut
	Reason string // human-readable detail, may be empty; at most MaxPipeReason bytes
}

// PipeClose codes.
const (
	PipeClosed        uint8 = 0 // an end closed it
	PipeNotOwnCluster uint8 = 1 // relay: the target is not of its cluster
	PipeNoLink        uint8 = 2 // relay: no direct link up to the target
	PipeTooMany       uint8 = 3 // relay or target: too many pipes in progress
	PipeBadRequest    uint8 = 4 // relay or target: a PipeOpen it does not serve
	PipeOverflow      uint8 = 5 // a queue or buffer on the way over its bound
	PipeLinkDown      uint8 = 6 // relay: its link to the other end ended
	pipeMaxCode             = PipeLinkDown
)

// MaxPipeReason bounds PipeClose.Reason.
const MaxPipeReason = 256

// Type returns TypePipeOpen.
func (*PipeOpen) Type() Type { return TypePipeOpen }

// AppendBody appends the encoded body to b.
func (m *PipeOpen) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.ID)
	b = appendString(b, m.Cluster)
	return appendString(b, m.Node)
}

// DecodeBody decodes body into m.
func (m *PipeOpen) DecodeBody(body []byte) error {
	d := newDecoder(TypePipeOpen, body)
	m.ID = d.uvarint("ID")
	if m.ID == 0 && d.err == nil {
		d.fail("ID", "0 is not a pipe")
	}
	m.Cluster = d.str("Cluster")
	m.Node = d.str("Node")
	return d.finish()
}

// Type returns TypePipeData.
func (*PipeData) Type() Type { return TypePipeData }

// AppendBody appends the encoded body to b.
func (m *PipeData) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.ID)
	return appendBytes(b, m.Data)
}

// DecodeBody decodes body into m.
func (m *PipeData) DecodeBody(body []byte) error {
	d := newDecoder(TypePipeData, body)
	m.ID = d.uvarint("ID")
	m.Data = d.bytes("Data")
	return d.finish()
}

// Type returns TypePipeClose.
func (*PipeClose) Type() Type { return TypePipeClose }

// AppendBody appends the encoded body to b.
func (m *PipeClose) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.ID)
	b = append(b, m.Code)
	return appendString(b, m.Reason)
}

// DecodeBody decodes body into m.
func (m *PipeClose) DecodeBody(body []byte) error {
	d := newDecoder(TypePipeClose, body)
	m.ID = d.uvarint("ID")
	m.Code = d.u8("Code")
	if m.Code > pipeMaxCode && d.err == nil {
		d.fail("Code", "unknown code %d", m.Code)
	}
	m.Reason = d.str("Reason")
	if len(m.Reason) > MaxPipeReason && d.err == nil {
		d.fail("Reason", "%d bytes, at most %d", len(m.Reason), MaxPipeReason)
	}
	return d.finish()
}
