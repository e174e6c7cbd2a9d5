package wire

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Frame header layout:
//
//	byte 0     version (Version)
//	byte 1     type (Type)
//	bytes 2-3  flags, uint16 big-endian, 0 in version 1
//	bytes 4-7  body length, uint32 big-endian
const (
	Version    = 1 // frame format version written and accepted
	HeaderSize = 8 // bytes in a frame header
)

// DefaultMaxBody is the default limit on a frame body: 1 MiB of payload plus
// 64 KiB for the other fields.
const DefaultMaxBody = 1<<20 + 64<<10

// maxLength is the largest body length a header can carry. AppendFrame writes
// it for a body that does not fit, and Reader never accepts it, so such a
// frame is rejected as too large instead of being silently truncated.
const maxLength = math.MaxUint32

// Type is a frame type: the header's second byte.
type Type uint8

// Link protocol frame types (0x01-0x3f).
const (
	TypeHello           Type = 0x01
	TypeWelcome         Type = 0x02
	TypeReady           Type = 0x03
	TypePing            Type = 0x04
	TypePong            Type = 0x05
	TypeStreamInit      Type = 0x06
	TypeGoAway          Type = 0x07
	TypeMembersSnapshot Type = 0x10
	TypeMembersDelta    Type = 0x11
	TypeDigest          Type = 0x12
	TypeResync          Type = 0x13
	TypeNodesRequest    Type = 0x14
	TypeNodes           Type = 0x15
	// 0x16 was Relay (relay streams, replaced by pipes): unused.
	TypePipeOpen         Type = 0x17
	TypePipeData         Type = 0x18
	TypePipeClose        Type = 0x19
	TypeMembersSubscribe Type = 0x1a
	TypeNodeMembers      Type = 0x1b
	TypeNodeDelta        Type = 0x1c
	TypeData             Type = 0x20
	TypeAck              Type = 0x21
	TypeDataBatch        Type = 0x22
	TypeUndeliverable    Type = 0x23
)

// Local protocol frame types (0x40-0x7f).
const (
	TypeClientHello  Type = 0x40
	TypeServerHello  Type = 0x41
	TypeOpen         Type = 0x42
	TypeOpened       Type = 0x43
	TypeCloseMailbox Type = 0x44
	TypeJoin         Type = 0x45
	TypeLeave        Type = 0x46
	TypeSend         Type = 0x47
	TypeSync         Type = 0x48
	TypeResult       Type = 0x49
	TypeDeliver      Type = 0x4a
	TypeWatch        Type = 0x4b
	TypeUnwatch      Type = 0x4c
	TypeWatchEvent   Type = 0x4d
	TypeMembers      Type = 0x4e
	TypeMembersList  Type = 0x4f
	TypeSendBatch    Type = 0x50
	TypeDeliverBatch Type = 0x51
	TypeDeliverAck   Type = 0x52
)

var typeNames = [256]string{
	TypeHello:            "Hello",
	TypeWelcome:          "Welcome",
	TypeReady:            "Ready",
	TypePing:             "Ping",
	TypePong:             "Pong",
	TypeStreamInit:       "StreamInit",
	TypeGoAway:           "GoAway",
	TypeMembersSnapshot:  "MembersSnapshot",
	TypeMembersDelta:     "MembersDelta",
	TypeData:             "Data",
	TypeAck:              "Ack",
	TypeDataBatch:        "DataBatch",
	TypeClientHello:      "ClientHello",
	TypeServerHello:      "ServerHello",
	TypeOpen:             "Open",
	TypeOpened:           "Opened",
	TypeCloseMailbox:     "CloseMailbox",
	TypeJoin:             "Join",
	TypeLeave:            "Leave",
	TypeSend:             "Send",
	TypeSendBatch:        "SendBatch",
	TypeDeliverBatch:     "DeliverBatch",
	TypeDeliverAck:       "DeliverAck",
	TypeUndeliverable:    "Undeliverable",
	TypeSync:             "Sync",
	TypeResult:           "Result",
	TypeDeliver:          "Deliver",
	TypeDigest:           "Digest",
	TypeResync:           "Resync",
	TypeNodesRequest:     "NodesRequest",
	TypeNodes:            "Nodes",
	TypePipeOpen:         "PipeOpen",
	TypePipeData:         "PipeData",
	TypePipeClose:        "PipeClose",
	TypeMembersSubscribe: "MembersSubscribe",
	TypeNodeMembers:      "NodeMembers",
	TypeNodeDelta:        "NodeDelta",
	TypeWatch:            "Watch",
	TypeUnwatch:          "Unwatch",
	TypeWatchEvent:       "WatchEvent",
	TypeMembers:          "Members",
	TypeMembersList:      "MembersList",
}

// String returns the message name ("Data"), or "Type(0x99)" for an
// undefined type.
func (t Type) String() string {
	if s := typeNames[t]; s != "" {
		return s
	}
	return fmt.Sprintf("Type(%#02x)", uint8(t))
}

// Known reports whether t is a frame type defined by this package.
func (t Type) Known() bool { return typeNames[t] != "" }

// Link reports whether t is a defined link protocol type.
func (t Type) Link() bool { return t < 0x40 && t.Known() }

// Local reports whether t is a defined local protocol type.
func (t Type) Local() bool { return t >= 0x40 && t < 0x80 && t.Known() }

// Message is the body of one frame. Every message struct of this package
// implements it through its pointer: AppendFrame(buf, &Data{...}) and
// var d Data; d.DecodeBody(body).
type Message interface {
	// Type returns the frame type carrying this message.
	Type() Type
	// AppendBody appends the encoded body (without header) to b.
	AppendBody(b []byte) []byte
	// DecodeBody replaces the message's fields with those decoded from
	// body. It fails with a *FrameError wrapping ErrMalformed, after which
	// the fields are unspecified. Byte-slice payloads alias body.
	DecodeBody(body []byte) error
}

// AppendFrame appends the frame (header and body) carrying m to dst and
// returns the extended slice. It does not allocate when dst has enough
// capacity. The caller keeps bodies under the peer's limit; a body of 4 GiB
// or more gets the length 0xffffffff, which every Reader rejects.
func AppendFrame(dst []byte, m Message) []byte {
	dst, start := beginFrame(dst, m.Type())
	return endFrame(m.AppendBody(dst), start)
}

// AppendFrame appends m as a frame, like the function AppendFrame; a direct
// call does not make m escape to the heap (the hot paths use it).
func (m *Data) AppendFrame(dst []byte) []byte {
	dst, start := beginFrame(dst, TypeData)
	return endFrame(m.AppendBody(dst), start)
}

// AppendFrame appends m as a frame (see (*Data).AppendFrame).
func (m *Send) AppendFrame(dst []byte) []byte {
	dst, start := beginFrame(dst, TypeSend)
	return endFrame(m.AppendBody(dst), start)
}

// AppendFrame appends m as a frame (see (*Data).AppendFrame).
func (m *Deliver) AppendFrame(dst []byte) []byte {
	dst, start := beginFrame(dst, TypeDeliver)
	return endFrame(m.AppendBody(dst), start)
}

func beginFrame(dst []byte, t Type) ([]byte, int) {
	return append(dst, Version, byte(t), 0, 0, 0, 0, 0, 0), len(dst)
}

// endFrame writes the length of the frame that starts at start.
func endFrame(dst []byte, start int) []byte {
	n := uint64(len(dst) - start - HeaderSize)
	if n > maxLength {
		n = maxLength
	}
	binary.BigEndian.PutUint32(dst[start+4:start+HeaderSize], uint32(n))
	return dst
}

// New returns a new zero message of type t, or nil if t is not defined.
func New(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeWelcome:
		return new(Welcome)
	case TypeReady:
		return new(Ready)
	case TypePing:
		return new(Ping)
	case TypePong:
		return new(Pong)
	case TypeStreamInit:
		return new(StreamInit)
	case TypeGoAway:
		return new(GoAway)
	case TypeMembersSnapshot:
		return new(MembersSnapshot)
	case TypeMembersDelta:
		return new(MembersDelta)
	case TypeData:
		return new(Data)
	case TypeAck:
		return new(Ack)
	case TypeDataBatch:
		return new(DataBatch)
	case TypeUndeliverable:
		return new(Undeliverable)
	case TypeClientHello:
		return new(ClientHello)
	case TypeServerHello:
		return new(ServerHello)
	case TypeOpen:
		return new(Open)
	case TypeOpened:
		return new(Opened)
	case TypeCloseMailbox:
		return new(CloseMailbox)
	case TypeJoin:
		return new(Join)
	case TypeLeave:
		return new(Leave)
	case TypeSend:
		return new(Send)
	case TypeSendBatch:
		return new(SendBatch)
	case TypeDeliverBatch:
		return new(DeliverBatch)
	case TypeDeliverAck:
		return new(DeliverAck)
	case TypeSync:
		return new(Sync)
	case TypeResult:
		return new(Result)
	case TypeDeliver:
		return new(Deliver)
	case TypeDigest:
		return new(Digest)
	case TypeResync:
		return new(Resync)
	case TypeNodesRequest:
		return new(NodesRequest)
	case TypeNodes:
		return new(Nodes)
	case TypePipeOpen:
		return new(PipeOpen)
	case TypePipeData:
		return new(PipeData)
	case TypePipeClose:
		return new(PipeClose)
	case TypeMembersSubscribe:
		return new(MembersSubscribe)
	case TypeNodeMembers:
		return new(NodeMembers)
	case TypeNodeDelta:
		return new(NodeDelta)
	case TypeWatch:
		return new(Watch)
	case TypeUnwatch:
		return new(Unwatch)
	case TypeWatchEvent:
		return new(WatchEvent)
	case TypeMembers:
		return new(Members)
	case TypeMembersList:
		return new(MembersList)
	}
	return nil
}

// Decode allocates the message for frame type t and decodes body into it.
// An undefined type fails with a *FrameError wrapping ErrUnknownType, a body
// that does not decode with one wrapping ErrMalformed; the error's Offset is
// -1 (Reader.ReadMessage fills it in). Payloads alias body.
func Decode(t Type, body []byte) (Message, error) {
	m := New(t)
	if m == nil {
		return nil, &FrameError{Offset: -1, Type: t, Reason: "unknown frame type", Err: ErrUnknownType}
	}
	if err := m.DecodeBody(body); err != nil {
		return nil, err
	}
	return m, nil
}
