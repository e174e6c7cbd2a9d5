package wire

// NodesRequest asks the acceptor of a connection for its cluster's nodes.
// A node dialling a seed of a remote cluster sends it instead of Hello as
// the first frame of the control stream; the acceptor answers with Nodes
// and closes the connection.
type NodesRequest struct {
	Cluster string // the asker's cluster
	Node    string // the asker's node
}

// Node states in a Nodes frame.
const (
	NodeAlive uint8 = 0 // a member of its cluster's view (alive or suspected)
	NodeDead  uint8 = 1 // declared dead by its cluster's failure detector
	NodeLeft  uint8 = 2 // left its cluster on purpose
)

// NodeEntry is one node of a cluster in a Nodes frame. An address is empty
// when the node does not listen on that transport.
type NodeEntry struct {
	Node  string
	State uint8
	QUIC  string // host:port of its QUIC link listener
	TCP   string // host:port of its TCP link listener
}

// Nodes lists the nodes of the sender's cluster as the sender sees them: the
// answer to NodesRequest, and on an up link a control frame sent after the
// membership snapshot and again whenever the sender's view changes. Each
// frame carries the whole list (Version grows with every change).
type Nodes struct {
	Cluster string
	Version uint64
	Nodes   []NodeEntry
}

// MaxNodes bounds the entries of a Nodes frame.
const MaxNodes = 4096

// Type returns TypeNodesRequest.
func (*NodesRequest) Type() Type { return TypeNodesRequest }

// AppendBody appends the encoded body to b.
func (m *NodesRequest) AppendBody(b []byte) []byte {
	b = appendString(b, m.Cluster)
	return appendString(b, m.Node)
}

// DecodeBody decodes body into m.
func (m *NodesRequest) DecodeBody(body []byte) error {
	d := newDecoder(TypeNodesRequest, body)
	m.Cluster = d.str("Cluster")
	m.Node = d.str("Node")
	return d.finish()
}

// Type returns TypeNodes.
func (*Nodes) Type() Type { return TypeNodes }

// AppendBody appends the encoded body to b.
func (m *Nodes) AppendBody(b []byte) []byte {
	b = appendString(b, m.Cluster)
	b = appendUvarint(b, m.Version)
	b = appendUvarint(b, uint64(len(m.Nodes)))
	for _, n := range m.Nodes {
		b = appendString(b, n.Node)
		b = append(b, n.State)
		b = appendString(b, n.QUIC)
		b = appendString(b, n.TCP)
	}
	return b
}

// DecodeBody decodes body into m.
func (m *Nodes) DecodeBody(body []byte) error {
	d := newDecoder(TypeNodes, body)
	m.Cluster = d.str("Cluster")
	m.Version = d.uvarint("Version")
	n := d.length("Nodes", 4)
	if n > MaxNodes {
		d.fail("Nodes", "%d entries, at most %d", n, MaxNodes)
		return d.finish()
	}
	m.Nodes = nil
	if n > 0 {
		m.Nodes = make([]NodeEntry, 0, n)
	}
	d.list = "Nodes"
	for i := range n {
		if d.err != nil {
			break
		}
		d.idx = i
		var e NodeEntry
		e.Node = d.str("Node")
		e.State = d.u8("State")
		if e.State > NodeLeft && d.err == nil {
			d.fail("State", "unknown node state %d", e.State)
		}
		e.QUIC = d.str("QUIC")
		e.TCP = d.str("TCP")
		m.Nodes = append(m.Nodes, e)
	}
	return d.finish()
}
