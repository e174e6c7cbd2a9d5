package wire

// Encoding and decoding of the link protocol messages (messages.go).

// Type returns TypeHello.
func (*Hello) Type() Type { return TypeHello }

// AppendBody appends the encoded body to b.
func (m *Hello) AppendBody(b []byte) []byte {
	b = appendString(b, m.Cluster)
	b = appendString(b, m.Node)
	b = appendUvarint(b, m.Incarnation)
	b = appendUvarint(b, m.MaxFrame)
	return appendUvarint(b, m.DurableID)
}

// DecodeBody decodes body into m.
func (m *Hello) DecodeBody(body []byte) error {
	d := newDecoder(TypeHello, body)
	m.Cluster = d.str("Cluster")
	m.Node = d.str("Node")
	m.Incarnation = d.uvarint("Incarnation")
	m.MaxFrame = d.uvarint("MaxFrame")
	m.DurableID = d.uvarint("DurableID")
	return d.finish()
}

// Type returns TypeWelcome.
func (*Welcome) Type() Type { return TypeWelcome }

// AppendBody appends the encoded body to b.
func (m *Welcome) AppendBody(b []byte) []byte {
	b = append(b, m.Status)
	b = appendString(b, m.Cluster)
	b = appendString(b, m.Node)
	b = appendUvarint(b, m.Incarnation)
	b = appendUvarint(b, m.MaxFrame)
	b = appendString(b, m.Reason)
	b = appendUvarint(b, m.DurableID)
	return appendUvarints(b, m.Delivered)
}

// DecodeBody decodes body into m.
func (m *Welcome) DecodeBody(body []byte) error {
	d := newDecoder(TypeWelcome, body)
	m.Status = d.u8("Status")
	m.Cluster = d.str("Cluster")
	m.Node = d.str("Node")
	m.Incarnation = d.uvarint("Incarnation")
	m.MaxFrame = d.uvarint("MaxFrame")
	m.Reason = d.str("Reason")
	m.DurableID = d.uvarint("DurableID")
	m.Delivered = d.uvarints("Delivered")
	return d.finish()
}

// Type returns TypeReady.
func (*Ready) Type() Type { return TypeReady }

// AppendBody appends Ready's body.
func (m *Ready) AppendBody(b []byte) []byte { return appendUvarints(b, m.Delivered) }

// DecodeBody checks that body is empty.
func (m *Ready) DecodeBody(body []byte) error {
	d := newDecoder(TypeReady, body)
	m.Delivered = d.uvarints("Delivered")
	return d.finish()
}

// Type returns TypePing.
func (*Ping) Type() Type { return TypePing }

// AppendBody appends the encoded body to b.
func (m *Ping) AppendBody(b []byte) []byte { return appendUvarint(b, m.Echo) }

// DecodeBody decodes body into m.
func (m *Ping) DecodeBody(body []byte) error {
	d := newDecoder(TypePing, body)
	m.Echo = d.uvarint("Echo")
	return d.finish()
}

// Type returns TypePong.
func (*Pong) Type() Type { return TypePong }

// AppendBody appends the encoded body to b.
func (m *Pong) AppendBody(b []byte) []byte { return appendUvarint(b, m.Echo) }

// DecodeBody decodes body into m.
func (m *Pong) DecodeBody(body []byte) error {
	d := newDecoder(TypePong, body)
	m.Echo = d.uvarint("Echo")
	return d.finish()
}

// Type returns TypeStreamInit.
func (*StreamInit) Type() Type { return TypeStreamInit }

// AppendBody appends the encoded body to b.
func (m *StreamInit) AppendBody(b []byte) []byte { return append(b, m.Kind, m.Lane) }

// DecodeBody decodes body into m.
func (m *StreamInit) DecodeBody(body []byte) error {
	d := newDecoder(TypeStreamInit, body)
	m.Kind = d.u8("Kind")
	m.Lane = d.u8("Lane")
	return d.finish()
}

// Type returns TypeGoAway.
func (*GoAway) Type() Type { return TypeGoAway }

// AppendBody appends the encoded body to b.
func (m *GoAway) AppendBody(b []byte) []byte {
	b = append(b, m.Code)
	return appendString(b, m.Reason)
}

// DecodeBody decodes body into m.
func (m *GoAway) DecodeBody(body []byte) error {
	d := newDecoder(TypeGoAway, body)
	m.Code = d.u8("Code")
	m.Reason = d.str("Reason")
	return d.finish()
}

// memberMinSize is the least number of bytes an encoded Member takes:
// an empty Group and two one-byte varints.
const memberMinSize = 5

// Type returns TypeMembersSnapshot.
func (*MembersSnapshot) Type() Type { return TypeMembersSnapshot }

// AppendBody appends the encoded body to b.
func (m *MembersSnapshot) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Incarnation)
	b = appendUvarint(b, m.Version)
	b = appendMembers(b, m.Members)
	return appendBool(b, m.More)
}

// appendMembers appends a list of Members.
func appendMembers(b []byte, ms []Member) []byte {
	b = appendUvarint(b, uint64(len(ms)))
	for i := range ms {
		e := &ms[i]
		b = appendString(b, e.Group)
		b = appendUvarint(b, e.Mailbox)
		b = appendUvarint(b, e.Count)
		b = appendUvarint(b, e.PartitionCount)
		b = appendPartitions(b, e.Partitions)
	}
	return b
}

// DecodeBody decodes body into m. An empty list decodes as nil.
func (m *MembersSnapshot) DecodeBody(body []byte) error {
	d := newDecoder(TypeMembersSnapshot, body)
	m.Incarnation = d.uvarint("Incarnation")
	m.Version = d.uvarint("Version")
	m.Members = d.members()
	m.More = d.boolean("More")
	if err := d.finish(); err != nil {
		m.Members = nil
		return err
	}
	return nil
}

// members decodes a list of Members; an empty list decodes as nil.
func (d *decoder) members() []Member {
	n := d.length("Members", memberMinSize)
	if n == 0 {
		return nil
	}
	ms := make([]Member, n)
	d.list = "Members"
	for i := range ms {
		d.idx = i
		e := &ms[i]
		e.Group = d.str("Group")
		e.Mailbox = d.uvarint("Mailbox")
		e.Count = d.uvarint("Count")
		e.PartitionCount = d.uvarint("PartitionCount")
		e.Partitions = d.partitions("Partitions")
	}
	d.list = ""
	return ms
}

// Type returns TypeMembersDelta.
func (*MembersDelta) Type() Type { return TypeMembersDelta }

// AppendBody appends the encoded body to b.
func (m *MembersDelta) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Incarnation)
	b = appendUvarint(b, m.Version)
	b = append(b, m.Op)
	b = appendString(b, m.Group)
	b = appendUvarint(b, m.Mailbox)
	b = appendUvarint(b, m.PartitionCount)
	return appendPartitions(b, m.Partitions)
}

// DecodeBody decodes body into m.
func (m *MembersDelta) DecodeBody(body []byte) error {
	d := newDecoder(TypeMembersDelta, body)
	d.delta(m)
	return d.finish()
}

// delta decodes the fields of a MembersDelta into m.
func (d *decoder) delta(m *MembersDelta) {
	m.Incarnation = d.uvarint("Incarnation")
	m.Version = d.uvarint("Version")
	m.Op = d.u8("Op")
	m.Group = d.str("Group")
	m.Mailbox = d.uvarint("Mailbox")
	m.PartitionCount = d.uvarint("PartitionCount")
	m.Partitions = d.partitions("Partitions")
}

// Type returns TypeData.
func (*Data) Type() Type { return TypeData }

// AppendBody appends the encoded body to b.
func (m *Data) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Seq)
	b = appendUvarint(b, headerFlags(m.Flags, m.Headers))
	b = appendUvarint(b, m.To)
	b = appendUvarint(b, m.From)
	b = appendUvarint(b, m.TTL)
	b = appendString(b, m.Group)
	b = appendBytes(b, m.Payload)
	b = appendUvarint(b, m.Corr)
	if m.Flags&FlagRouted != 0 {
		b = append(b, m.Strategy)
		b = appendString(b, m.Key)
		b = appendString(b, m.OriginCluster)
		b = appendString(b, m.OriginNode)
	}
	if len(m.Headers) == 0 {
		return b
	}
	return appendBytes(b, m.Headers)
}

// DecodeBody decodes body into m. It does not allocate: Payload aliases
// body (nil if empty), and Group keeps its previous value when the decoded
// bytes equal it, so a Data reused across frames of the same group costs no
// string copy.
func (m *Data) DecodeBody(body []byte) error {
	d := newDecoder(TypeData, body)
	m.Seq = d.uvarint("Seq")
	m.Flags = d.uvarint("Flags")
	m.To = d.uvarint("To")
	m.From = d.uvarint("From")
	m.TTL = d.uvarint("TTL")
	m.Group = d.strReuse("Group", m.Group)
	m.Payload = d.bytes("Payload")
	m.Corr = d.uvarint("Corr")
	m.Strategy, m.Key, m.OriginCluster, m.OriginNode = 0, "", "", ""
	if m.Flags&FlagRouted != 0 {
		m.Strategy = d.u8("Strategy")
		m.Key = d.str("Key")
		m.OriginCluster = d.str("OriginCluster")
		m.OriginNode = d.str("OriginNode")
	}
	m.Headers = nil
	if m.Flags&FlagHeaders != 0 {
		m.Headers = d.headers("Headers")
	}
	return d.finish()
}

// Type returns TypeAck.
func (*Ack) Type() Type { return TypeAck }

// AppendBody appends the encoded body to b.
func (m *Ack) AppendBody(b []byte) []byte {
	b = append(b, m.Lane)
	b = appendUvarint(b, m.Incarnation)
	return appendUvarint(b, m.Seq)
}

// DecodeBody decodes body into m.
func (m *Ack) DecodeBody(body []byte) error {
	d := newDecoder(TypeAck, body)
	m.Lane = d.u8("Lane")
	m.Incarnation = d.uvarint("Incarnation")
	m.Seq = d.uvarint("Seq")
	return d.finish()
}

// Type returns TypeUndeliverable.
func (*Undeliverable) Type() Type { return TypeUndeliverable }

// AppendBody appends the encoded body to b.
func (m *Undeliverable) AppendBody(b []byte) []byte { return appendUvarint(b, m.Count) }

// DecodeBody decodes body into m.
func (m *Undeliverable) DecodeBody(body []byte) error {
	d := newDecoder(TypeUndeliverable, body)
	m.Count = d.uvarint("Count")
	return d.finish()
}
