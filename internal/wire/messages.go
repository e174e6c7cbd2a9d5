package wire

// Link protocol messages (types 0x01-0x3f). Every struct below is the body
// of one frame; its Type method gives the frame type. Field order in the
// struct is the order on the wire. Encodings:
//   uint8        1 byte
//   uint64/int   unsigned LEB128 varint (encoding/binary.AppendUvarint), at most 10 bytes
//   string/bytes varint length, then the bytes (length checked against the frame end)
//   lists        varint count, then the elements
// A decoder rejects trailing bytes after the last field.

// Hello is the first frame on a link's control stream, sent by the dialer.
type Hello struct {
	Cluster     string // the dialer's cluster
	Node        string // the dialer's node
	Incarnation uint64 // changes each time the dialer's daemon starts
	MaxFrame    uint64 // largest frame body the dialer accepts
	DurableID   uint64 // id of the dialer's durable stream (its spool), 0 without a spool
}

// Welcome answers Hello, sent by the acceptor.
type Welcome struct {
	Status      uint8 // WelcomeOK, WelcomeSimultaneous, WelcomeRefused
	Cluster     string
	Node        string
	Incarnation uint64
	MaxFrame    uint64
	Reason      string   // human-readable, for Status != WelcomeOK
	DurableID   uint64   // id of the acceptor's durable stream, 0 without a spool
	Delivered   []uint64 // per lane: the highest Seq the acceptor delivered from the dialer (lanes 0-1: of Hello.Incarnation; lane 2: of Hello.DurableID)
}

// Welcome statuses.
const (
	WelcomeOK           uint8 = 0 // link accepted; the dialer confirms with Ready
	WelcomeSimultaneous uint8 = 1 // both nodes dialled; the acceptor's own dial wins, the dialer drops this one
	WelcomeRefused      uint8 = 2 // refused, see Reason
)

// Ready is the dialer's confirmation that it uses the link: after Ready both
// sides may send data.
type Ready struct {
	Delivered []uint64 // per lane: the highest Seq the dialer delivered from the acceptor (as in Welcome)
}

// Ping asks for a Pong carrying the same Echo (the sender's monotonic clock in ns).
type Ping struct{ Echo uint64 }

// Pong answers a Ping.
type Pong struct{ Echo uint64 }

// StreamInit is the first frame on every stream other than the control stream.
type StreamInit struct {
	Kind uint8 // StreamData, StreamPipes
	Lane uint8 // LaneNormal, LaneHigh, LaneDurable (0 for StreamPipes)
}

// Stream kinds and lanes.
const (
	StreamData uint8 = 1
	// StreamPipes carries pipes (PipeOpen, PipeData, PipeClose): at most
	// one per side of a link, see docs/wire-spec.md, "Pipes". (Kinds 2
	// and 3 were the relay streams that pipes replaced: unused.)
	StreamPipes uint8 = 4

	LaneNormal  uint8 = 0
	LaneHigh    uint8 = 1
	LaneDurable uint8 = 2 // durable messages: Seq per durable stream (spool), not per incarnation
	NumLanes    uint8 = 3 // lanes are numbered from 0 to NumLanes-1
)

// Member is one membership entry: a mailbox of the sending node in a group,
// joined Count times.
type Member struct {
	Group          string
	Mailbox        uint64
	Count          uint64
	PartitionCount uint64   // partitioned group: its number of partitions N (0: not partitioned)
	Partitions     []uint64 // partitions (each < N) this member owns
}

// MembersSnapshot replaces everything the receiver knows of the sender's
// members. Sent on the control stream when a link comes up.
type MembersSnapshot struct {
	Incarnation uint64 // sender's incarnation
	Version     uint64 // sender's membership version this snapshot reflects
	Members     []Member
	More        bool // more frames of this snapshot follow (a large one is split to fit the frame limit)
}

// MembersDelta is one change of the sender's membership, in version order.
type MembersDelta struct {
	Incarnation uint64
	Version     uint64 // version after this change; deltas are applied in order, a gap asks for a snapshot
	Op          uint8  // OpJoin, OpLeave
	Group       string
	Mailbox     uint64
	// For OpJoin of a partitioned group: N and the partitions claimed.
	PartitionCount uint64
	Partitions     []uint64
}

// Membership operations.
const (
	OpJoin  uint8 = 1
	OpLeave uint8 = 2
	OpNoop  uint8 = 3 // only the version advances: a change to a group not exported to the receiver
)

// Data carries one message on a data stream.
type Data struct {
	Seq     uint64 // per (sender incarnation, receiver, lane), starts at 1; 0 for at-most-once
	Flags   uint64 // FlagAtMostOnce, ...
	To      uint64 // destination mailbox id on the receiving node
	From    uint64 // source mailbox id on the sending node (0 = the daemon itself)
	TTL     uint64 // remaining time to live in milliseconds, 0 = none
	Group   string // the group this message was sent to ("" for a direct send)
	Payload []byte // aliases the frame buffer after Decode: copy it to keep it
	Corr    uint64 // request-reply: the caller's correlation id (0: none); FlagReply marks the reply
	// With FlagRouted (else absent from the body): how the group send was
	// routed, so that the receiving node can route it again to its
	// group's member elsewhere when it has none; and for a message a node
	// routed on in that way, the node that sent it first (From is a
	// mailbox there).
	Strategy      uint8
	Key           string
	OriginCluster string
	OriginNode    string
	// Headers is the message's header block (headers.go), nil for none;
	// with FlagHeaders, the body ends with it. It aliases the body after
	// DecodeBody, like Payload.
	Headers []byte
}

// Data flags.
const (
	FlagAtMostOnce uint64 = 1 << 0
	FlagDurable    uint64 = 1 << 1
	FlagReply      uint64 = 1 << 3 // the message answers the request with the same Corr
	FlagRouted     uint64 = 1 << 5 // the body ends with Strategy, Key, OriginCluster, OriginNode
)

// Ack acknowledges, cumulatively, every Data with Seq <= Seq on Lane that the
// sender of the Ack received from the incarnation Incarnation.
type Ack struct {
	Lane        uint8
	Incarnation uint64
	Seq         uint64
}

// Undeliverable tells the sending node that Count more of its messages
// reached this node for an address (not a group) whose mailbox is gone:
// they were counted and dropped, acknowledged like delivered ones.
type Undeliverable struct{ Count uint64 }

// GoAway announces that the sender closes the link, and why.
type GoAway struct {
	Code   uint8 // GoAwayNormal, GoAwayShutdown, GoAwayReplaced, GoAwayProtocol
	Reason string
}

// GoAway codes.
const (
	GoAwayNormal   uint8 = 0
	GoAwayShutdown uint8 = 1 // the node is stopping
	GoAwayReplaced uint8 = 2 // a newer link to the same peer replaced this one
	GoAwayProtocol uint8 = 3 // the peer violated the protocol
)
