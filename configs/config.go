package configs

import (
	"crypto/ed25519"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/internal/sockpath"
)

// Config is the whole wandistd configuration of one node.
type Config struct {
	// Path is the file the config was loaded from ("" when parsed from
	// bytes without a path).
	Path string
	// Cluster is this node's cluster name (required).
	Cluster string
	// Node is this node's name, unique in its cluster (required).
	Node string
	// Identity is the path of this node's private key file (required).
	// Parse makes it absolute, relative to the config file's directory.
	Identity string
	// Certificate (certificate) is the path of this node's certificate
	// chain (PEM, leaf first), issued by its cluster's CA for its identity
	// key; absolute after Parse. "" (the default): a self-signed
	// certificate, which peers must pin.
	Certificate string
	// Trust holds the cluster CAs trusted, the revocation list and the
	// expiry warning (YAML key trust).
	Trust  Trust
	Listen Listen
	Local  Local
	Admin  Admin
	Link   Link
	Groups Groups
	// Buffer holds the defaults for every peer's outbound buffer.
	Buffer Buffer
	Spool  Spool
	Log    Log
	Peers  []Peer
	// Remotes are the remote clusters found from seeds (YAML key remotes).
	Remotes []Remote
	// Exports says which groups are published to which remote clusters
	// (YAML key exports). nil (the key absent): every group to every
	// cluster. Peers in this node's own cluster always see every group.
	Exports []Export
	// Imports says which remote clusters may add members to which groups
	// (YAML key imports). nil (the key absent): a cluster may add members
	// to the groups exported to it, and to no other. Peers in this node's
	// own cluster may add members to every group.
	Imports []Import
	Gossip  Gossip
}

// Import is one import rule: peers of the clusters in From ("*": all) may
// add members to the groups matching any of Groups (path.Match patterns).
type Import struct {
	Groups []string
	From   []string
	Line   int
}

// Export is one export rule: the groups matching any of Groups (path.Match
// patterns, e.g. "kv-*") are published to the clusters in To ("*": all).
type Export struct {
	Groups []string
	To     []string
	Line   int
}

// Spool configures the durable spool (YAML key spool). Without a Dir the
// node has no spool and refuses durable sends.
type Spool struct {
	Dir        string // dir: where segment files go, relative to the config file; default "" = no spool
	MaxBytes   int64  // max_bytes: bytes of segment files at most; default 1 GiB
	SecretFile string // secret_file: file whose bytes are the encryption secret; default "" = derived from the node key
}

// DefaultSpoolMaxBytes is the default spool.max_bytes.
const DefaultSpoolMaxBytes = 1 << 30

// Listen holds the addresses this node accepts peer links on. Either, both
// or none may be set: a node without listeners only dials.
type Listen struct {
	QUIC string // host:port (UDP)
	TCP  string // host:port (TCP+TLS+yamux)
}

// Local configures the Unix socket local processes talk to.
type Local struct {
	// Socket defaults to DefaultSocket(): wandist.sock in
	// $RUNTIME_DIRECTORY, /run/wandist or $XDG_RUNTIME_DIR/wandist. The
	// daemon creates its directory (0750) and refuses one owned by another
	// user or writable by group or others.
	Socket string
	// Token, when set, must be presented by local clients.
	Token string
	// MaxClients (max_clients) bounds the clients connected at once (past
	// their hello); one more is refused with a busy status. Default 1024.
	MaxClients int
	// HelloTimeout (hello_timeout) is how long a new connection has to
	// say hello; until then it holds no slot of MaxClients, and at most
	// 128 connections wait for their hello (one more closes the oldest).
	// Default 2s; 100ms..1m.
	HelloTimeout time.Duration
	// ClientBuffer (client_buffer) bounds the bytes of deliveries pending
	// for one client: waiting to be written, or written and not yet
	// confirmed (reliable messages from other nodes). Default 64 MiB;
	// 64 KiB..1 GiB.
	ClientBuffer int
	// InboxFull (inbox_full) says what a message from another node meets at
	// a client whose buffer is full. InboxPark (the default): a reliable
	// message waits in this node's hold (HoldBytes, HoldMessages), in order
	// behind the others for its mailbox, unacknowledged, so its sender's
	// buffer keeps it; messages for other mailboxes go on. A durable
	// message makes the durable lane wait for room; an at-most-once one is
	// dropped and counted. InboxHold makes every lane wait until the
	// client has room, holding up the lane for every mailbox on this node.
	// InboxDrop drops and counts every kind. Messages between local
	// clients are dropped either way: a sender is never suspended.
	InboxFull string
	// HoldBytes (hold_bytes) and HoldMessages (hold_messages) bound the
	// messages waiting on this node: for room at their client
	// (inbox_full: park), or for a member of their group to join (after a
	// restart of this node). Past either, the link lane that brings more
	// waits until there is room. Defaults 64 MiB and 100,000.
	HoldBytes    int
	HoldMessages int
}

// Defaults of local.hold_bytes and local.hold_messages.
const (
	DefaultHoldBytes    = 64 << 20
	DefaultHoldMessages = 100_000
)

// DefaultHelloTimeout is the default local.hello_timeout.
const DefaultHelloTimeout = 2 * time.Second

// DefaultMaxClients is the default local.max_clients.
const DefaultMaxClients = 1024

// DefaultClientBuffer is the default local.client_buffer.
const DefaultClientBuffer = 64 << 20

// local.inbox_full values.
const (
	InboxPark = "park"
	InboxDrop = "drop"
	InboxHold = "hold"
)

// Admin configures the admin HTTP endpoint.
type Admin struct {
	// Listen is a host:port; "" (the default) turns admin HTTP off. An
	// address other than loopback requires a Token.
	Listen string
	// Token (token), when set, must come with every admin request as
	// "Authorization: Bearer TOKEN". Default "": none (loopback only), and
	// then only the read-only endpoints are served: POST /v1/reload and
	// pprof need a token.
	Token string
	// Pprof (pprof) serves Go's profiles under /debug/pprof/ on the admin
	// listener, behind the token, which it requires. Default false.
	Pprof bool
}

// Link tunes the links between nodes.
type Link struct {
	KeepaliveInterval time.Duration // default 1s
	KeepaliveTimeout  time.Duration // default 5s; > KeepaliveInterval, <= 10m
	HandshakeTimeout  time.Duration // default 5s
	ReconnectMin      time.Duration // default 100ms
	ReconnectMax      time.Duration // default 10s; >= ReconnectMin
	MaxFrameSize      int           // bytes; default 1 MiB + 64 KiB; 4 KiB..64 MiB
	MaxStreams        int           // streams a peer may have open on a link; default 16; 4..1024 (a link uses 4)
	HandshakeRate     int           // handshakes a second one source address may start; default 20; 1..100000
	HandshakeBurst    int           // and in bursts of up to this many; default 40; 1..100000
	// HandshakeRateTotal bounds the handshakes a second all sources not
	// seen as a pinned peer before may start together, in bursts of as
	// many; default 20; 1..100000.
	HandshakeRateTotal int
	// HelloTimeout bounds the wait for a TCP client's ClientHello: the first
	// byte within half of it, all of it within it; default 2s; at most
	// HandshakeTimeout (a larger value acts as HandshakeTimeout).
	HelloTimeout time.Duration
	// MaxLinkMemory (max_link_memory) bounds MaxStreams × MaxFrameSize:
	// the bytes of frames a peer can make this node hold at once on one
	// link (each stream reads one frame of up to MaxFrameSize). Default
	// 256 MiB; 1 MiB..16 GiB.
	MaxLinkMemory int64
	// QUICConnections (quic_connections) is how many QUIC connections a
	// QUIC link this node dials is made of, and the most it takes on a link
	// it accepts: each stream of the link (control, one per lane) goes on
	// the next in turn and gets a congestion window of its own, which on a
	// lossy path (quic-go's congestion control is loss-based) lets a link
	// carry several times more (docs/chaos.md). Each connection has its own
	// max_streams and flow-control windows: max_link_memory must hold
	// max_streams × max_frame_size × quic_connections. Default 1; 1..16.
	QUICConnections int
}

// Groups tunes process groups.
type Groups struct {
	// UnreachableGrace is how long a peer may be unreachable before it is
	// reported (a log line, unreachable_past_grace in status). Nothing is
	// removed or discarded for it. Default 30s.
	UnreachableGrace time.Duration
	// RejoinGrace (rejoin_grace) is how long after this daemon starts a
	// group message from another node that finds no member of its group
	// here (its consumers are reconnecting after a restart of this node)
	// waits in the hold for one, instead of being routed to a member on
	// another node, which may already have newer messages (the routed ones
	// would arrive behind them) or lack the record of what this node's
	// consumer already took (they would arrive twice). Past it, such
	// messages are routed on (wandist_messages_rerouted_remote_total).
	// Broadcasts always wait. Default 10s; 0..10m; 0 routes on at once.
	RejoinGrace time.Duration
	// The budget of membership one peer may publish to this node. Past
	// it, joins are refused (counted in wandist_membership_refused_total)
	// and a snapshot is discarded (the previous view stays).
	MaxMembersPerPeer    int           // max_members_per_peer: (group, mailbox) pairs; default 100,000
	MaxGroupsPerPeer     int           // max_groups_per_peer: distinct groups; default 10,000
	MaxPartitionsPerPeer int           // max_partitions_per_peer: claimed partitions, summed over members; default 1,000,000
	MaxSnapshotBytes     int64         // max_snapshot_bytes: bytes of one snapshot's frames; default 64 MiB
	SnapshotTimeout      time.Duration // snapshot_timeout: from a snapshot's first frame to its last; default 2m
	// MembershipRate (membership_rate) bounds the bytes a second of
	// membership frames (snapshots, deltas; a Resync counts as 1 MiB) this
	// node reads from one peer, in bursts of 8 MiB: past it,
	// the peer's control stream is read later. Default 256 KiB.
	MembershipRate int64
}

// Defaults and bounds of the per-peer membership budget (groups.*).
const (
	DefaultMaxMembersPerPeer    = 100_000
	DefaultMaxGroupsPerPeer     = 10_000
	DefaultMaxPartitionsPerPeer = 1_000_000
	DefaultMaxSnapshotBytes     = 64 << 20
	DefaultSnapshotTimeout      = 2 * time.Minute
	DefaultMembershipRate       = 256 << 10
	MinMembershipRate           = 64 << 10
	MaxMembershipRate           = 1 << 30

	MaxMembersPerPeer    = 100_000_000
	MaxGroupsPerPeer     = 10_000_000
	MaxPartitionsPerPeer = 1_000_000_000
	MaxSnapshotBytes     = 16 << 30
	MinSnapshotTimeout   = 100 * time.Millisecond
	MaxSnapshotTimeout   = time.Hour

	DefaultRejoinGrace = 10 * time.Second
	MaxRejoinGrace     = 10 * time.Minute
)

// Buffer bounds the outbound buffer kept for one destination.
type Buffer struct {
	MaxBytes    int64         // default 64 MiB
	MaxMessages int           // default 1,000,000
	MaxAge      time.Duration // default 0: no age limit
	Overflow    string        // OverflowReject (default) or OverflowDropOldest
}

// Log configures logging.
type Log struct {
	Level  string // debug, info (default), warn, error
	Format string // text (default), json
}

// Peer is one remote node this node links with.
type Peer struct {
	Cluster string // required
	Node    string // required
	// Address is the host:port to dial; "" means accept-only.
	Address string
	// Transport is TransportQUIC (default) or TransportTCP.
	Transport string
	// Mode is ModeConnect, ModeAccept or ModeBoth. It defaults to ModeBoth
	// when Address is set and to ModeAccept otherwise.
	Mode string
	// PublicKeys are the keys the peer may authenticate with (at least one).
	PublicKeys []ed25519.PublicKey
	// Buffer is the peer's effective outbound buffer: the top-level buffer
	// with the peer's own overrides applied.
	Buffer Buffer
	// Line is the line of the peer's entry in the file (0 when built in code).
	Line int
}

// Enum values.
const (
	TransportQUIC = "quic"
	TransportTCP  = "tcp"

	ModeConnect = "connect"
	ModeAccept  = "accept"
	ModeBoth    = "both"

	OverflowReject     = "reject"
	OverflowDropOldest = "drop-oldest"

	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"

	FormatText = "text"
	FormatJSON = "json"
)

// Defaults and limits.
const (
	DefaultKeepaliveInterval = time.Second
	DefaultKeepaliveTimeout  = 5 * time.Second
	DefaultHandshakeTimeout  = 5 * time.Second
	DefaultReconnectMin      = 100 * time.Millisecond
	DefaultReconnectMax      = 10 * time.Second
	DefaultMaxFrameSize      = 1<<20 + 64<<10
	DefaultMaxStreams        = 16
	DefaultHandshakeRate     = 20
	DefaultHandshakeBurst    = 40
	DefaultHandshakeRateAll  = 20
	DefaultLinkHelloTimeout  = 2 * time.Second
	DefaultMaxLinkMemory     = 256 << 20
	DefaultUnreachableGrace  = 30 * time.Second
	DefaultBufferMaxBytes    = 64 << 20
	DefaultBufferMaxMessages = 1_000_000

	MinFrameSize        = 4096
	MaxFrameSize        = 64 << 20
	MaxKeepaliveTimeout = 10 * time.Minute
	MinLinkMemory       = 1 << 20
	MaxLinkMemory       = 16 << 30
	MaxQUICConnections  = 16
	// MaxSocketPath is the longest Unix socket path accepted (the portable
	// limit of sockaddr_un.sun_path, minus the terminating NUL).
	MaxSocketPath = 103
)

// Default returns a Config with every default filled in. Cluster, Node,
// Identity, Local.Socket and Peers are left empty.
func Default() *Config {
	return &Config{
		Gossip: Gossip{Profile: GossipLAN},
		Link: Link{
			KeepaliveInterval:  DefaultKeepaliveInterval,
			KeepaliveTimeout:   DefaultKeepaliveTimeout,
			HandshakeTimeout:   DefaultHandshakeTimeout,
			ReconnectMin:       DefaultReconnectMin,
			ReconnectMax:       DefaultReconnectMax,
			MaxFrameSize:       DefaultMaxFrameSize,
			MaxStreams:         DefaultMaxStreams,
			HandshakeRate:      DefaultHandshakeRate,
			HandshakeBurst:     DefaultHandshakeBurst,
			HandshakeRateTotal: DefaultHandshakeRateAll,
			HelloTimeout:       DefaultLinkHelloTimeout,
			MaxLinkMemory:      DefaultMaxLinkMemory,
			QUICConnections:    1,
		},
		Groups: Groups{UnreachableGrace: DefaultUnreachableGrace, RejoinGrace: DefaultRejoinGrace, MaxMembersPerPeer: DefaultMaxMembersPerPeer,
			MaxGroupsPerPeer: DefaultMaxGroupsPerPeer, MaxPartitionsPerPeer: DefaultMaxPartitionsPerPeer,
			MaxSnapshotBytes: DefaultMaxSnapshotBytes, SnapshotTimeout: DefaultSnapshotTimeout,
			MembershipRate: DefaultMembershipRate},
		Buffer: defaultBuffer(),
		Spool:  Spool{MaxBytes: DefaultSpoolMaxBytes},
		Local:  Local{MaxClients: DefaultMaxClients, HelloTimeout: DefaultHelloTimeout, ClientBuffer: DefaultClientBuffer, InboxFull: InboxPark, HoldBytes: DefaultHoldBytes, HoldMessages: DefaultHoldMessages},
		Log:    Log{Level: LogInfo, Format: FormatText},
		Trust:  Trust{Domain: auth.DefaultTrustDomain, ExpiryWarning: DefaultExpiryWarning},
	}
}

func defaultBuffer() Buffer {
	return Buffer{
		MaxBytes:    DefaultBufferMaxBytes,
		MaxMessages: DefaultBufferMaxMessages,
		Overflow:    OverflowReject,
	}
}

// DefaultSocket returns the default local socket path: wandist.sock in
// $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=), else in /run/wandist
// when this user may create or write it, else in $XDG_RUNTIME_DIR/wandist.
func DefaultSocket() string { return sockpath.Daemon() }
