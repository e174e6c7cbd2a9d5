package wire

// Messages of membership through a gateway (docs/wire-spec.md, "Membership
// through a gateway"): a node linked to only a few nodes of a remote
// cluster (its gateways) learns the members of the cluster's other nodes
// from one of them.

// MembersSubscribe asks the receiver, a node of another cluster, to send
// the membership of its cluster mates (NodeMembers), then every change of
// it (NodeDelta), on this link. Sent again on the same link, it asks for
// fresh NodeMembers of every cluster mate.
type MembersSubscribe struct{}

// NodeMembers is the membership of one node of the sender's cluster (not
// the sender itself) as the sender holds it: a MembersSnapshot of that
// node, split in frames the same way.
type NodeMembers struct {
	Cluster     string // the node's cluster: the sender's
	Node        string
	Incarnation uint64 // the node's incarnation
	Version     uint64 // the node's membership version this reflects
	Members     []Member
	More        bool // more frames of this node's snapshot follow
}

// NodeDelta is one change of the membership of a node of the sender's
// cluster, forwarded: the node's MembersDelta, named.
type NodeDelta struct {
	Cluster string
	Node    string
	Delta   MembersDelta
}

// Type returns TypeMembersSubscribe.
func (*MembersSubscribe) Type() Type { return TypeMembersSubscribe }

// AppendBody appends the encoded (empty) body to b.
func (m *MembersSubscribe) AppendBody(b []byte) []byte { return b }

// DecodeBody decodes body into m: it must be empty.
func (m *MembersSubscribe) DecodeBody(body []byte) error {
	d := newDecoder(TypeMembersSubscribe, body)
	return d.finish()
}

// Type returns TypeNodeMembers.
func (*NodeMembers) Type() Type { return TypeNodeMembers }

// AppendBody appends the encoded body to b.
func (m *NodeMembers) AppendBody(b []byte) []byte {
	b = appendString(b, m.Cluster)
	b = appendString(b, m.Node)
	b = appendUvarint(b, m.Incarnation)
	b = appendUvarint(b, m.Version)
	b = appendMembers(b, m.Members)
	return appendBool(b, m.More)
}

// DecodeBody decodes body into m. An empty list decodes as nil.
func (m *NodeMembers) DecodeBody(body []byte) error {
	d := newDecoder(TypeNodeMembers, body)
	m.Cluster = d.str("Cluster")
	m.Node = d.str("Node")
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

// Type returns TypeNodeDelta.
func (*NodeDelta) Type() Type { return TypeNodeDelta }

// AppendBody appends the encoded body to b: Cluster, Node, then the
// fields of the MembersDelta.
func (m *NodeDelta) AppendBody(b []byte) []byte {
	b = appendString(b, m.Cluster)
	b = appendString(b, m.Node)
	return m.Delta.AppendBody(b)
}

// DecodeBody decodes body into m.
func (m *NodeDelta) DecodeBody(body []byte) error {
	d := newDecoder(TypeNodeDelta, body)
	m.Cluster = d.str("Cluster")
	m.Node = d.str("Node")
	d.delta(&m.Delta)
	return d.finish()
}
