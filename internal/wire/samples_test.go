package wire

import (
	"math"
	"strings"
)

// sampleMessages returns one or more messages of every type with
// non-trivial field values, used by the round-trip, truncation and fuzz
// tests and to generate the seed corpora.
func sampleMessages() []Message {
	payload := []byte("hello, \x00world\xff")
	big := []byte(strings.Repeat("0123456789abcdef", 20))
	return []Message{
		&Hello{Cluster: "eu-west", Node: "node-1", Incarnation: 1718000000123456789, MaxFrame: DefaultMaxBody, DurableID: 3},
		&Welcome{Status: WelcomeOK, Cluster: "us-east", Node: "n2", Incarnation: 42, MaxFrame: 1 << 20, DurableID: 9, Delivered: []uint64{5, 0, 77}},
		&Welcome{Status: WelcomeRefused, Cluster: "us-east", Node: "n2", Incarnation: 42, MaxFrame: 1 << 20, Reason: "identity mismatch: TLS says eu-west/node-9"},
		&Digest{Incarnation: 7, Version: 300, Hash: 0xdeadbeefcafe},
		&Resync{Incarnation: 7},
		&Watch{Req: 9, Group: "orders"},
		&Unwatch{Req: 10, Watch: 9},
		&WatchEvent{Watch: 9, Op: OpJoin, Cluster: "us-east", Node: "n2", Mailbox: 12},
		&Members{Req: 11, Group: "kv", Local: true},
		&MembersList{Req: 11, Members: []MemberInfo{{Cluster: "us-east", Node: "n2", Mailbox: 12, Count: 2, Reachable: true, Partitions: []uint64{1, 2}}, {Cluster: "eu", Node: "n9", Mailbox: 1}}},
		&MembersList{Req: 12},
		&Ready{},
		&Ready{Delivered: []uint64{1, 2, 3}},
		&Ping{Echo: 123456789012345},
		&Pong{Echo: math.MaxUint64},
		&StreamInit{Kind: StreamData, Lane: LaneHigh},
		&GoAway{Code: GoAwayReplaced, Reason: "replaced by a newer link"},
		&MembersSnapshot{Incarnation: 7, Version: 300, Members: []Member{
			{Group: "orders", Mailbox: 1, Count: 1},
			{Group: "", Mailbox: 0, Count: 0},
			{Group: "käse/ünïcode", Mailbox: math.MaxUint64, Count: 1000},
		}},
		&MembersSnapshot{Incarnation: 8, Version: 0},
		&MembersDelta{Incarnation: 7, Version: 301, Op: OpLeave, Group: "orders", Mailbox: 129},
		&MembersDelta{Incarnation: 7, Version: 302, Op: OpJoin, Group: "kv", Mailbox: 130, PartitionCount: 64, Partitions: []uint64{0, 1, 63}},
		&Data{Seq: 1 << 40, Flags: FlagDurable, To: 17, From: 300, TTL: 30000, Group: "orders", Payload: payload},
		&Data{Seq: 0, Flags: FlagAtMostOnce, To: 1, Payload: big},
		&Data{Seq: 3, Flags: FlagReply, To: 1, From: 2, TTL: 10, Payload: payload, Corr: 1 << 50},
		&Ack{Lane: LaneNormal, Incarnation: 99, Seq: 12345},
		&ClientHello{Version: LocalVersion, Name: "billing-svc", Token: "s3cr3t"},
		&ServerHello{Version: LocalVersion, Cluster: "eu-west", Node: "node-1", Incarnation: 5, MaxMessage: 1 << 20, Status: StatusOK},
		&ServerHello{Version: LocalVersion, Status: StatusUnauthorized, Message: "bad token"},
		&Open{Req: 1},
		&Opened{Req: 1, Mailbox: 77},
		&CloseMailbox{Req: 2, Mailbox: 77},
		&Join{Req: 3, Mailbox: 77, Group: "orders"},
		&Join{Req: 4, Mailbox: 77, Group: "kv", PartitionCount: 64, Partitions: []uint64{5, 6}},
		&Leave{Req: 4, Mailbox: 77, Group: "orders"},
		&Send{SendHeader: SendHeader{Req: 5, From: 77, Flags: FlagHigh | FlagDurable, TTL: 5000, Cluster: "us-east", Node: "n2", Mailbox: 12, Key: "k"}, Payload: payload},
		&Send{SendHeader: SendHeader{Req: 6, Group: "orders", Key: "customer-42"}, Payload: big},
		&Send{SendHeader: SendHeader{Req: 7, Group: "kv", Key: "k1"}, Payload: payload, Strategy: StrategyKey},
		&Send{SendHeader: SendHeader{Req: 8, From: 3, Cluster: "c", Node: "n", Mailbox: 4, Flags: FlagReply, TTL: 250}, Payload: payload, Corr: 77},
		&Sync{Req: 7},
		&Result{Req: 5, Status: StatusBusy, Message: "destination buffer full"},
		&Deliver{Mailbox: 77, FromCluster: "us-east", FromNode: "n2", From: 12, Group: "orders", Payload: payload},
		&Deliver{Mailbox: 77, FromCluster: "us-east", FromNode: "n2", From: 12, Group: "orders", Payload: payload, Stream: 99, Seq: 1234, Floor: 1200, Flags: FlagHigh},
		&Deliver{Mailbox: 77, FromCluster: "us-east", FromNode: "n2", From: 12, Payload: payload, Corr: 5, Flags: FlagReply, TTL: 900},
		&SendBatch{SendHeader: SendHeader{Req: 9 | 1<<63, From: 77, Flags: FlagQuiet, Group: "orders"}, Payloads: Batch(nil).Append(payload).Append(nil).Append(big)},
		&SendBatch{SendHeader: SendHeader{Req: 10, Flags: FlagQuiet | FlagHigh, TTL: 100, Cluster: "c", Node: "n", Mailbox: 4, Key: "k"}, Strategy: StrategyKey, Payloads: Batch(nil).Append(payload)},
		&DeliverBatch{Mailbox: 77, FromCluster: "us-east", FromNode: "n2", From: 12, Group: "orders", Payloads: Batch(nil).Append(payload).Append(big).Append(nil)},
		&DeliverBatch{Mailbox: 1, FromCluster: "c", FromNode: "n", Payloads: Batch(nil).Append(nil)},
		&DeliverBatch{Mailbox: 2, FromCluster: "c", FromNode: "n", Flags: FlagHigh, Stream: 1 << 60, Seq: 77, Floor: 70, Payloads: Batch(nil).Append(payload)},
		&DeliverAck{Count: 123456},
		&Data{Seq: 9, Flags: FlagRouted, To: 17, From: 3, Group: "kv", Payload: payload, Strategy: StrategyKey, Key: "user-42", OriginCluster: "eu", OriginNode: "n1"},
		&Undeliverable{Count: 17},
		&DataBatch{Seq: 1 << 40, Flags: 0, To: 17, From: 300, Group: "orders", Payloads: Batch(nil).Append(payload).Append(big)},
		&DataBatch{Flags: FlagAtMostOnce, To: 1, Payloads: Batch(nil).Append(nil).Append(payload)},
		&NodesRequest{Cluster: "east", Node: "e1"},
		&Nodes{Cluster: "west", Version: 3, Nodes: []NodeEntry{{Node: "w1", QUIC: "10.0.0.1:4433", TCP: "10.0.0.1:4434"}, {Node: "w2", State: NodeDead}}},
		&Nodes{Cluster: "west", Version: 1},
		&PipeOpen{ID: 1 << 33, Cluster: "west", Node: "w3"},
		&PipeData{ID: 7, Data: big},
		&PipeData{ID: 2},
		&PipeClose{ID: 7},
		&PipeClose{ID: 8, Code: PipeNoLink, Reason: "no direct link up to west/w9"},
		&MembersSubscribe{},
		&NodeMembers{Cluster: "west", Node: "w3", Incarnation: 7, Version: 300, Members: []Member{
			{Group: "orders", Mailbox: 1, Count: 1},
			{Group: "kv", Mailbox: 2, Count: 3, PartitionCount: 64, Partitions: []uint64{0, 63}},
		}, More: true},
		&NodeMembers{Cluster: "west", Node: "w4", Incarnation: 8},
		&NodeDelta{Cluster: "west", Node: "w3", Delta: MembersDelta{Incarnation: 7, Version: 302, Op: OpJoin, Group: "kv", Mailbox: 130, PartitionCount: 64, Partitions: []uint64{0, 1, 63}}},
		&NodeDelta{Cluster: "west", Node: "w3", Delta: MembersDelta{Incarnation: 7, Version: 303, Op: OpNoop}},
		// Messages with headers (FlagHeaders, set by the encoder).
		&Send{SendHeader: SendHeader{Req: 9, Flags: FlagHeaders, Group: "orders"}, Payload: payload, Headers: sampleHeaders},
		&Send{SendHeader: SendHeader{Req: 10, From: 3, Cluster: "c", Node: "n", Mailbox: 4, Flags: FlagReply | FlagQuiet | FlagHeaders}, Payload: payload, Corr: 77, Headers: sampleHeaders},
		&Data{Seq: 4, Flags: FlagHeaders, To: 1, From: 2, Payload: payload, Headers: sampleHeaders},
		&Data{Seq: 10, Flags: FlagRouted | FlagDurable | FlagHeaders, To: 17, From: 3, Group: "kv", Payload: payload, Strategy: StrategyKey, Key: "user-42", OriginCluster: "eu", OriginNode: "n1", Headers: sampleHeaders},
		&Deliver{Mailbox: 77, FromCluster: "us-east", FromNode: "n2", From: 12, Group: "orders", Payload: payload, Stream: 99, Seq: 1235, Flags: FlagDurable | FlagHeaders, Headers: sampleHeaders},
	}
}

// sampleHeaders is a header block: a W3C trace context and a key of
// every allowed byte class.
var sampleHeaders = mustHeaders([]Header{
	{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	{Key: "tracestate", Value: "congo=t61rcWkgMzE"},
	{Key: "x-request_id.0", Value: ""},
})

func mustHeaders(hs []Header) []byte {
	b, err := EncodeHeaders(nil, hs)
	if err != nil {
		panic(err)
	}
	return b
}
