package wire

// Local protocol messages (types 0x40-0x7f), spoken on the daemon's Unix
// socket between a client (SDK) and the daemon. Same framing as the link.

// ClientHello is the first frame a client sends.
type ClientHello struct {
	Version uint64 // local protocol version the client speaks (LocalVersion)
	Name    string // client name, for logs
	Token   string // shared secret when the daemon requires one
}

// ServerHello answers ClientHello.
type ServerHello struct {
	Version     uint64 // version the daemon speaks
	Cluster     string
	Node        string
	Incarnation uint64
	MaxMessage  uint64 // largest payload the daemon accepts
	Status      uint8  // StatusOK or an error status (then the daemon closes)
	Message     string
}

// LocalVersion is the version of the local protocol this package encodes:
// 3 added message headers (FlagHeaders in Send and Deliver). A daemon
// accepts LocalVersion2 clients too, and delivers to them without headers.
const LocalVersion = 3

// LocalVersion2 is the local protocol without message headers.
const LocalVersion2 = 2

// Open asks for a new mailbox; answered by Opened.
type Open struct{ Req uint64 }

// Opened answers Open.
type Opened struct {
	Req     uint64
	Mailbox uint64
}

// CloseMailbox removes a mailbox; it leaves all its groups. Answered by Result.
type CloseMailbox struct {
	Req     uint64
	Mailbox uint64
}

// Join adds a mailbox to a group (once more); Leave removes one join.
// Both are answered by Result.
type Join struct {
	Req     uint64
	Mailbox uint64
	Group   string
	// A partitioned group: its number of partitions N, and the partitions
	// (each < N) this mailbox owns. All members of a group must agree on N.
	PartitionCount uint64
	Partitions     []uint64
}

// Leave undoes one Join.
type Leave struct {
	Req     uint64
	Mailbox uint64
	Group   string
}

// Send submits one message. Answered by Result (Code StatusOK once the daemon
// accepted it into the destination's buffer, or an error status).
type Send struct {
	SendHeader
	Payload  []byte
	Strategy uint8  // group sends: StrategyClosest (default), StrategyRandom, ...
	Corr     uint64 // request-reply correlation id (0: none); Flags has FlagReply on a reply
	// Headers is the message's header block (headers.go), nil for none;
	// on the wire only with FlagHeaders. It aliases the body after
	// DecodeBody, like Payload.
	Headers []byte
}

// SendHeader is what Send and SendBatch begin with, encoded alike.
type SendHeader struct {
	Req     uint64
	From    uint64 // sending mailbox (0 = anonymous)
	Flags   uint64 // FlagAtMostOnce, FlagDurable, FlagHigh, FlagQuiet, FlagReply
	TTL     uint64 // milliseconds, 0 = none
	Cluster string // target address (when Group == "")
	Node    string
	Mailbox uint64
	Group   string // target group (when non-empty, Cluster/Node/Mailbox are ignored)
	Key     string // routing key for key-routed group sends ("" = none)
}

// appendBody appends the encoded header to b.
func (h *SendHeader) appendBody(b []byte) []byte {
	b = appendUvarint(b, h.Req)
	b = appendUvarint(b, h.From)
	b = appendUvarint(b, h.Flags)
	b = appendUvarint(b, h.TTL)
	b = appendString(b, h.Cluster)
	b = appendString(b, h.Node)
	b = appendUvarint(b, h.Mailbox)
	b = appendString(b, h.Group)
	return appendString(b, h.Key)
}

// decode decodes the header from d; its strings keep their previous value
// when the decoded bytes equal it.
func (h *SendHeader) decode(d *decoder) {
	h.Req = d.uvarint("Req")
	h.From = d.uvarint("From")
	h.Flags = d.uvarint("Flags")
	h.TTL = d.uvarint("TTL")
	h.Cluster = d.strReuse("Cluster", h.Cluster)
	h.Node = d.strReuse("Node", h.Node)
	h.Mailbox = d.uvarint("Mailbox")
	h.Group = d.strReuse("Group", h.Group)
	h.Key = d.strReuse("Key", h.Key)
}

// Routing strategies of a group send.
const (
	StrategyClosest      uint8 = 0 // same node, then same cluster, then lowest RTT
	StrategyRandom       uint8 = 1 // uniformly among reachable members
	StrategyRoundRobin   uint8 = 2 // in turn among reachable members (per sending node)
	StrategyLeastBacklog uint8 = 3 // power of two choices on backlog, then RTT
	StrategyKey          uint8 = 4 // by Key: partition owner, or rendezvous hashing
	StrategyBroadcast    uint8 = 5 // to every member
)

// FlagHigh selects the high-priority lane (local Send only).
const FlagHigh uint64 = 1 << 2

// FlagQuiet (local Send only) asks the daemon to answer the Send only if it
// fails: a client pipelining sends learns of their success from the Result
// of a later Sync (the daemon answers frames in order). Ignored on a
// durable Send, which is always answered.
const FlagQuiet uint64 = 1 << 4

// Sync asks the daemon to answer with Result once every frame sent before it
// has been processed.
type Sync struct{ Req uint64 }

// Result answers a request.
type Result struct {
	Req     uint64
	Status  uint8
	Message string
}

// Result statuses.
const (
	StatusOK           uint8 = 0
	StatusBusy         uint8 = 1 // destination buffer full
	StatusNoMembers    uint8 = 2 // group has no member
	StatusUnreachable  uint8 = 3 // no link and no buffer for the destination
	StatusTooLarge     uint8 = 4 // payload over the limit
	StatusBadRequest   uint8 = 5 // malformed or invalid request
	StatusNoMailbox    uint8 = 6 // unknown mailbox
	StatusUnauthorized uint8 = 7 // bad token
	StatusUnavailable  uint8 = 8 // daemon stopping
)

// Deliver hands a message to a client's mailbox.
type Deliver struct {
	Mailbox     uint64
	FromCluster string
	FromNode    string
	From        uint64
	Group       string
	Payload     []byte
	// Stream and Seq name a reliable or durable message so that a client
	// can drop a redelivery (0 for an at-most-once or local message): the
	// sending node's incarnation (reliable, lane by FlagHigh) or its
	// durable stream id (FlagDurable), and the message's Seq there.
	Stream uint64
	Seq    uint64
	Corr   uint64 // request-reply correlation id (0: none)
	Flags  uint64 // FlagReply for a reply; FlagDurable, FlagHigh: the stream kind
	TTL    uint64 // remaining time to live in ms when delivered (0: none); a reply should carry it
	// Floor: every Seq <= Floor of the stream was dealt with by this node
	// and will never be delivered again; a client may forget them.
	Floor uint64
	// Headers is the message's header block (as in Send): only to a
	// client that speaks LocalVersion 3 or later.
	Headers []byte
}

// DeliverAck confirms to the daemon, cumulatively, that the client took the
// first Count messages delivered on this connection (a Deliver counts one,
// a DeliverBatch one per payload). The daemon acknowledges a reliable or
// durable message to its sending node only once its client confirmed it.
type DeliverAck struct{ Count uint64 }
