package wire

// Messages of group membership checks and watches.

// Digest is sent periodically on the control stream: a summary of the
// sender's own membership at Version. A receiver whose view of the sender
// has the same Version but another Hash answers Resync.
type Digest struct {
	Incarnation uint64
	Version     uint64
	Hash        uint64 // MembershipHash of the sender's members at Version
}

// Resync asks the receiver to send a fresh MembersSnapshot of its members.
type Resync struct {
	Incarnation uint64 // the incarnation whose view diverged
}

// Watch asks for the membership events of Group (local protocol). Answered
// by Result, then WatchEvents carrying the same Req: first one Join per
// current member, then every change, in order.
type Watch struct {
	Req   uint64
	Group string
}

// Unwatch ends the watch started by the Watch with Req Watch. Answered by Result.
type Unwatch struct {
	Req   uint64
	Watch uint64
}

// WatchEvent is one membership change of a watched group.
type WatchEvent struct {
	Watch   uint64 // the Req of the Watch
	Op      uint8  // OpJoin, OpLeave, or OpOverflow (events were lost: list the members again)
	Cluster string
	Node    string
	Mailbox uint64
}

// OpOverflow in a WatchEvent: the client fell behind and events were dropped.
const OpOverflow uint8 = 4

// Members asks for the members of Group; Local limits the answer to this node.
type Members struct {
	Req   uint64
	Group string
	Local bool
}

// MemberInfo is one member in a MembersList.
type MemberInfo struct {
	Cluster    string
	Node       string
	Mailbox    uint64
	Count      uint64
	Reachable  bool
	Partitions []uint64
}

// MembersList answers Members.
type MembersList struct {
	Req     uint64
	Members []MemberInfo
}

// Type returns TypeDigest.
func (*Digest) Type() Type { return TypeDigest }

// AppendBody appends the encoded body to b.
func (m *Digest) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Incarnation)
	b = appendUvarint(b, m.Version)
	return appendUvarint(b, m.Hash)
}

// DecodeBody decodes body into m.
func (m *Digest) DecodeBody(body []byte) error {
	d := newDecoder(TypeDigest, body)
	m.Incarnation = d.uvarint("Incarnation")
	m.Version = d.uvarint("Version")
	m.Hash = d.uvarint("Hash")
	return d.finish()
}

// Type returns TypeResync.
func (*Resync) Type() Type { return TypeResync }

// AppendBody appends the encoded body to b.
func (m *Resync) AppendBody(b []byte) []byte { return appendUvarint(b, m.Incarnation) }

// DecodeBody decodes body into m.
func (m *Resync) DecodeBody(body []byte) error {
	d := newDecoder(TypeResync, body)
	m.Incarnation = d.uvarint("Incarnation")
	return d.finish()
}

// Type returns TypeWatch.
func (*Watch) Type() Type { return TypeWatch }

// AppendBody appends the encoded body to b.
func (m *Watch) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Req)
	return appendString(b, m.Group)
}

// DecodeBody decodes body into m.
func (m *Watch) DecodeBody(body []byte) error {
	d := newDecoder(TypeWatch, body)
	m.Req = d.uvarint("Req")
	m.Group = d.str("Group")
	return d.finish()
}

// Type returns TypeUnwatch.
func (*Unwatch) Type() Type { return TypeUnwatch }

// AppendBody appends the encoded body to b.
func (m *Unwatch) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Req)
	return appendUvarint(b, m.Watch)
}

// DecodeBody decodes body into m.
func (m *Unwatch) DecodeBody(body []byte) error {
	d := newDecoder(TypeUnwatch, body)
	m.Req = d.uvarint("Req")
	m.Watch = d.uvarint("Watch")
	return d.finish()
}

// Type returns TypeWatchEvent.
func (*WatchEvent) Type() Type { return TypeWatchEvent }

// AppendBody appends the encoded body to b.
func (m *WatchEvent) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Watch)
	b = append(b, m.Op)
	b = appendString(b, m.Cluster)
	b = appendString(b, m.Node)
	return appendUvarint(b, m.Mailbox)
}

// DecodeBody decodes body into m.
func (m *WatchEvent) DecodeBody(body []byte) error {
	d := newDecoder(TypeWatchEvent, body)
	m.Watch = d.uvarint("Watch")
	m.Op = d.u8("Op")
	m.Cluster = d.str("Cluster")
	m.Node = d.str("Node")
	m.Mailbox = d.uvarint("Mailbox")
	return d.finish()
}

// Type returns TypeMembers.
func (*Members) Type() Type { return TypeMembers }

// AppendBody appends the encoded body to b.
func (m *Members) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Req)
	b = appendString(b, m.Group)
	return appendBool(b, m.Local)
}

// DecodeBody decodes body into m.
func (m *Members) DecodeBody(body []byte) error {
	d := newDecoder(TypeMembers, body)
	m.Req = d.uvarint("Req")
	m.Group = d.str("Group")
	m.Local = d.boolean("Local")
	return d.finish()
}

// Type returns TypeMembersList.
func (*MembersList) Type() Type { return TypeMembersList }

// memberInfoMinSize is the least number of bytes of an encoded MemberInfo.
const memberInfoMinSize = 6

// AppendBody appends the encoded body to b.
func (m *MembersList) AppendBody(b []byte) []byte {
	b = appendUvarint(b, m.Req)
	b = appendUvarint(b, uint64(len(m.Members)))
	for i := range m.Members {
		e := &m.Members[i]
		b = appendString(b, e.Cluster)
		b = appendString(b, e.Node)
		b = appendUvarint(b, e.Mailbox)
		b = appendUvarint(b, e.Count)
		b = appendBool(b, e.Reachable)
		b = appendPartitions(b, e.Partitions)
	}
	return b
}

// DecodeBody decodes body into m.
func (m *MembersList) DecodeBody(body []byte) error {
	d := newDecoder(TypeMembersList, body)
	m.Req = d.uvarint("Req")
	n := d.length("Members", memberInfoMinSize)
	m.Members = nil
	if n > 0 {
		m.Members = make([]MemberInfo, n)
		d.list = "Members"
		for i := range m.Members {
			d.idx = i
			e := &m.Members[i]
			e.Cluster = d.str("Cluster")
			e.Node = d.str("Node")
			e.Mailbox = d.uvarint("Mailbox")
			e.Count = d.uvarint("Count")
			e.Reachable = d.boolean("Reachable")
			e.Partitions = d.partitions("Partitions")
		}
		d.list = ""
	}
	if err := d.finish(); err != nil {
		m.Members = nil
		return err
	}
	return nil
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// boolean decodes one byte that must be 0 or 1 (one encoding per value).
func (d *decoder) boolean(field string) bool {
	v := d.u8(field)
	if v > 1 {
		d.fail(field, "boolean byte %d, want 0 or 1", v)
	}
	return v == 1
}
