package wire

// Encoding and decoding of the local protocol messages (local.go).

// Type returns TypeClientHello.
func (*ClientHello) Type() Type { return TypeClientHello }

// AppendBody appends the encoded body to b.
func (m *ClientHello) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Version)
	b = appendString(b, m.Name)
	return appendString(b, m.Token)
}

// DecodeBody decodes body into m.
func (m *ClientHello) DecodeBody(body []byte) error {
	d := newDecoder(TypeClientHello, body)
	m.Version = d.uvarint("Version")
	m.Name = d.str("Name")
	m.Token = d.str("Token")
	return d.finish()
}

// Type returns TypeServerHello.
func (*ServerHello) Type() Type { return TypeServerHello }

// AppendBody appends the encoded body to b.
func (m *ServerHello) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Version)
	b = appendString(b, m.Cluster)
	b = appendString(b, m.Node)
	b = appendUvarint(b, m.Incarnation)
	b = appendUvarint(b, m.MaxMessage)
	b = append(b, m.Status)
	return appendString(b, m.Message)
}

// DecodeBody decodes body into m.
func (m *ServerHello) DecodeBody(body []byte) error {
	d := newDecoder(TypeServerHello, body)
	m.Version = d.uvarint("Version")
	m.Cluster = d.str("Cluster")
	m.Node = d.str("Node")
	m.Incarnation = d.uvarint("Incarnation")
	m.MaxMessage = d.uvarint("MaxMessage")
	m.Status = d.u8("Status")
	m.Message = d.str("Message")
	return d.finish()
}

// Type returns TypeOpen.
func (*Open) Type() Type { return TypeOpen }

// AppendBody appends the encoded body to b.
func (m *Open) AppendBody(b []byte) []byte { return appendUvarint(b, m.Req) }

// DecodeBody decodes body into m.
func (m *Open) DecodeBody(body []byte) error {
	d := newDecoder(TypeOpen, body)
	m.Req = d.uvarint("Req")
	return d.finish()
}

// Type returns TypeOpened.
func (*Opened) Type() Type { return TypeOpened }

// AppendBody appends the encoded body to b.
func (m *Opened) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Req)
	return appendUvarint(b, m.Mailbox)
}

// DecodeBody decodes body into m.
func (m *Opened) DecodeBody(body []byte) error {
	d := newDecoder(TypeOpened, body)
	m.Req = d.uvarint("Req")
	m.Mailbox = d.uvarint("Mailbox")
	return d.finish()
}

// Type returns TypeCloseMailbox.
func (*CloseMailbox) Type() Type { return TypeCloseMailbox }

// AppendBody appends the encoded body to b.
func (m *CloseMailbox) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Req)
	return appendUvarint(b, m.Mailbox)
}

// DecodeBody decodes body into m.
func (m *CloseMailbox) DecodeBody(body []byte) error {
	d := newDecoder(TypeCloseMailbox, body)
	m.Req = d.uvarint("Req")
	m.Mailbox = d.uvarint("Mailbox")
	return d.finish()
}

// Type returns TypeJoin.
func (*Join) Type() Type { return TypeJoin }

// AppendBody appends the encoded body to b.
func (m *Join) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Req)
	b = appendUvarint(b, m.Mailbox)
	b = appendString(b, m.Group)
	b = appendUvarint(b, m.PartitionCount)
	return appendPartitions(b, m.Partitions)
}

// DecodeBody decodes body into m.
func (m *Join) DecodeBody(body []byte) error {
	d := newDecoder(TypeJoin, body)
	m.Req = d.uvarint("Req")
	m.Mailbox = d.uvarint("Mailbox")
	m.Group = d.str("Group")
	m.PartitionCount = d.uvarint("PartitionCount")
	m.Partitions = d.partitions("Partitions")
	return d.finish()
}

// Type returns TypeLeave.
func (*Leave) Type() Type { return TypeLeave }

// AppendBody appends the encoded body to b.
func (m *Leave) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Req)
	b = appendUvarint(b, m.Mailbox)
	return appendString(b, m.Group)
}

// DecodeBody decodes body into m.
func (m *Leave) DecodeBody(body []byte) error {
	d := newDecoder(TypeLeave, body)
	m.Req = d.uvarint("Req")
	m.Mailbox = d.uvarint("Mailbox")
	m.Group = d.str("Group")
	return d.finish()
}

// Type returns TypeSend.
func (*Send) Type() Type { return TypeSend }

// AppendBody appends the encoded body to b.
func (m *Send) AppendBody(b []byte) []byte {
	if flags := headerFlags(m.Flags, m.Headers); flags != m.Flags { // rare: keep the hot path free of a copy
		h := m.SendHeader
		h.Flags = flags
		b = h.appendBody(b)
	} else {
		b = m.SendHeader.appendBody(b)
	}
	b = appendBytes(b, m.Payload)
	b = append(b, m.Strategy)
	b = appendUvarint(b, m.Corr)
	if len(m.Headers) == 0 {
		return b
	}
	return appendBytes(b, m.Headers)
}

// DecodeBody decodes body into m. Payload aliases body (nil if empty);
// strings keep their previous value when the decoded bytes equal it.
func (m *Send) DecodeBody(body []byte) error {
	d := newDecoder(TypeSend, body)
	m.SendHeader.decode(&d)
	m.Payload = d.bytes("Payload")
	m.Strategy = d.u8("Strategy")
	m.Corr = d.uvarint("Corr")
	m.Headers = nil
	if m.Flags&FlagHeaders != 0 {
		m.Headers = d.headers("Headers")
	}
	return d.finish()
}

// Type returns TypeSync.
func (*Sync) Type() Type { return TypeSync }

// AppendBody appends the encoded body to b.
func (m *Sync) AppendBody(b []byte) []byte { return appendUvarint(b, m.Req) }

// DecodeBody decodes body into m.
func (m *Sync) DecodeBody(body []byte) error {
	d := newDecoder(TypeSync, body)
	m.Req = d.uvarint("Req")
	return d.finish()
}

// Type returns TypeResult.
func (*Result) Type() Type { return TypeResult }

// AppendBody appends the encoded body to b.
func (m *Result) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Req)
	b = append(b, m.Status)
	return appendString(b, m.Message)
}

// DecodeBody decodes body into m.
func (m *Result) DecodeBody(body []byte) error {
	d := newDecoder(TypeResult, body)
	m.Req = d.uvarint("Req")
	m.Status = d.u8("Status")
	m.Message = d.str("Message")
	return d.finish()
}

// Type returns TypeDeliver.
func (*Deliver) Type() Type { return TypeDeliver }

// AppendBody appends the encoded body to b.
func (m *Deliver) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Mailbox)
	b = appendString(b, m.FromCluster)
	b = appendString(b, m.FromNode)
	b = appendUvarint(b, m.From)
	b = appendString(b, m.Group)
	b = appendBytes(b, m.Payload)
	b = appendUvarint(b, m.Stream)
	b = appendUvarint(b, m.Seq)
	b = appendUvarint(b, m.Corr)
	b = appendUvarint(b, headerFlags(m.Flags, m.Headers))
	b = appendUvarint(b, m.TTL)
	b = appendUvarint(b, m.Floor)
	if len(m.Headers) == 0 {
		return b
	}
	return appendBytes(b, m.Headers)
}

// DecodeBody decodes body into m. Payload aliases body (nil if empty);
// strings keep their previous value when the decoded bytes equal it.
func (m *Deliver) DecodeBody(body []byte) error {
	d := newDecoder(TypeDeliver, body)
	m.Mailbox = d.uvarint("Mailbox")
	m.FromCluster = d.strReuse("FromCluster", m.FromCluster)
	m.FromNode = d.strReuse("FromNode", m.FromNode)
	m.From = d.uvarint("From")
	m.Group = d.strReuse("Group", m.Group)
	m.Payload = d.bytes("Payload")
	m.Stream = d.uvarint("Stream")
	m.Seq = d.uvarint("Seq")
	m.Corr = d.uvarint("Corr")
	m.Flags = d.uvarint("Flags")
	m.TTL = d.uvarint("TTL")
	m.Floor = d.uvarint("Floor")
	m.Headers = nil
	if m.Flags&FlagHeaders != 0 {
		m.Headers = d.headers("Headers")
	}
	return d.finish()
}

// Type returns TypeDeliverAck.
func (*DeliverAck) Type() Type { return TypeDeliverAck }

// AppendBody appends the encoded body to b.
func (m *DeliverAck) AppendBody(b []byte) []byte { return appendUvarint(b, m.Count) }

// DecodeBody decodes body into m.
func (m *DeliverAck) DecodeBody(body []byte) error {
	d := newDecoder(TypeDeliverAck, body)
	m.Count = d.uvarint("Count")
	return d.finish()
}
