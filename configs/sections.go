package configs

import "go.yaml.in/yaml/v3"

// Known keys of every mapping in the file.
var (
	rootKeys   = []string{"cluster", "node", "identity", "listen", "local", "admin", "link", "groups", "buffer", "spool", "log", "peers", "exports", "imports", "certificate", "trust", "remotes", "gossip"}
	listenKeys = []string{"quic", "tcp"}
	localKeys  = []string{"socket", "token", "max_clients", "hello_timeout", "client_buffer", "inbox_full", "hold_bytes", "hold_messages"}
	adminKeys  = []string{"listen", "token", "pprof"}
	linkKeys   = []string{"keepalive_interval", "keepalive_timeout", "handshake_timeout", "reconnect_min", "reconnect_max", "max_frame_size", "max_streams", "handshake_rate", "handshake_burst", "handshake_rate_total", "hello_timeout", "max_link_memory", "quic_connections"}
	groupsKeys = []string{"unreachable_grace", "rejoin_grace", "max_members_per_peer", "max_groups_per_peer", "max_partitions_per_peer", "max_snapshot_bytes", "snapshot_timeout", "membership_rate"}
	bufferKeys = []string{"max_bytes", "max_messages", "max_age", "overflow"}
	spoolKeys  = []string{"dir", "max_bytes", "secret_file"}
	logKeys    = []string{"level", "format"}
	peerKeys   = []string{"cluster", "node", "address", "transport", "mode", "public_key", "public_keys", "public_key_file", "buffer"}
)

// decodeConfig decodes the top-level mapping onto c, which holds the
// defaults. Peers are decoded last so that their buffers start from the
// top-level buffer wherever it is in the file.
func (r *reporter) decodeConfig(root *yaml.Node, c *Config, dir string) {
	if root != nil {
		r.lines[""] = root.Line
	}
	var peers, remotes *yaml.Node
	r.fields(root, "", rootKeys, func(name, key string, v *yaml.Node) {
		switch name {
		case "cluster":
			r.str(v, key, &c.Cluster)
		case "node":
			r.str(v, key, &c.Node)
		case "identity":
			r.str(v, key, &c.Identity)
		case "listen":
			r.fields(v, key, listenKeys, func(name, key string, v *yaml.Node) {
				switch name {
				case "quic":
					r.str(v, key, &c.Listen.QUIC)
				case "tcp":
					r.str(v, key, &c.Listen.TCP)
				}
			})
		case "local":
			r.fields(v, key, localKeys, func(name, key string, v *yaml.Node) {
				switch name {
				case "socket":
					r.str(v, key, &c.Local.Socket)
				case "token":
					r.str(v, key, &c.Local.Token)
				case "max_clients":
					r.integer(v, key, &c.Local.MaxClients)
				case "hello_timeout":
					r.duration(v, key, &c.Local.HelloTimeout)
				case "client_buffer":
					r.intSize(v, key, &c.Local.ClientBuffer)
				case "inbox_full":
					r.str(v, key, &c.Local.InboxFull)
				case "hold_bytes":
					r.intSize(v, key, &c.Local.HoldBytes)
				case "hold_messages":
					r.integer(v, key, &c.Local.HoldMessages)
				}
			})
		case "admin":
			r.fields(v, key, adminKeys, func(name, key string, v *yaml.Node) {
				switch name {
				case "listen":
					r.str(v, key, &c.Admin.Listen)
				case "token":
					r.str(v, key, &c.Admin.Token)
				case "pprof":
					r.boolean(v, key, &c.Admin.Pprof)
				}
			})
		case "link":
			r.decodeLink(v, key, &c.Link)
		case "groups":
			r.decodeGroups(v, key, &c.Groups)
		case "buffer":
			r.decodeBuffer(v, key, &c.Buffer)
		case "spool":
			r.fields(v, key, spoolKeys, func(name, key string, v *yaml.Node) {
				switch name {
				case "dir":
					r.str(v, key, &c.Spool.Dir)
				case "max_bytes":
					r.size(v, key, &c.Spool.MaxBytes)
				case "secret_file":
					r.str(v, key, &c.Spool.SecretFile)
				}
			})
		case "log":
			r.fields(v, key, logKeys, func(name, key string, v *yaml.Node) {
				switch name {
				case "level":
					r.str(v, key, &c.Log.Level)
				case "format":
					r.str(v, key, &c.Log.Format)
				}
			})
		case "peers":
			peers = v
		case "exports":
			r.decodeExports(v, c)
		case "imports":
			r.decodeImports(v, c)
		case "certificate":
			r.str(v, key, &c.Certificate)
		case "trust":
			r.decodeTrust(v, key, &c.Trust)
		case "remotes":
			remotes = v
		case "gossip":
			r.decodeGossip(v, key, &c.Gossip)
		}
	})
	r.decodePeers(peers, c, dir)
	r.decodeRemotes(remotes, c)
}

func (r *reporter) decodeLink(n *yaml.Node, path string, l *Link) {
	r.fields(n, path, linkKeys, func(name, key string, v *yaml.Node) {
		switch name {
		case "keepalive_interval":
			r.duration(v, key, &l.KeepaliveInterval)
		case "keepalive_timeout":
			r.duration(v, key, &l.KeepaliveTimeout)
		case "handshake_timeout":
			r.duration(v, key, &l.HandshakeTimeout)
		case "reconnect_min":
			r.duration(v, key, &l.ReconnectMin)
		case "reconnect_max":
			r.duration(v, key, &l.ReconnectMax)
		case "max_frame_size":
			r.intSize(v, key, &l.MaxFrameSize)
		case "max_streams":
			r.integer(v, key, &l.MaxStreams)
		case "handshake_rate":
			r.integer(v, key, &l.HandshakeRate)
		case "handshake_burst":
			r.integer(v, key, &l.HandshakeBurst)
		case "handshake_rate_total":
			r.integer(v, key, &l.HandshakeRateTotal)
		case "hello_timeout":
			r.duration(v, key, &l.HelloTimeout)
		case "max_link_memory":
			r.size(v, key, &l.MaxLinkMemory)
		case "quic_connections":
			r.integer(v, key, &l.QUICConnections)
		}
	})
}

func (r *reporter) decodeGroups(n *yaml.Node, path string, g *Groups) {
	r.fields(n, path, groupsKeys, func(name, key string, v *yaml.Node) {
		switch name {
		case "unreachable_grace":
			r.duration(v, key, &g.UnreachableGrace)
		case "rejoin_grace":
			r.duration(v, key, &g.RejoinGrace)
		case "max_members_per_peer":
			r.integer(v, key, &g.MaxMembersPerPeer)
		case "max_groups_per_peer":
			r.integer(v, key, &g.MaxGroupsPerPeer)
		case "max_partitions_per_peer":
			r.integer(v, key, &g.MaxPartitionsPerPeer)
		case "max_snapshot_bytes":
			r.size(v, key, &g.MaxSnapshotBytes)
		case "snapshot_timeout":
			r.duration(v, key, &g.SnapshotTimeout)
		case "membership_rate":
			r.size(v, key, &g.MembershipRate)
		}
	})
}

// decodeBuffer decodes a buffer mapping onto b; keys not in the mapping keep
// the value b already has.
func (r *reporter) decodeBuffer(n *yaml.Node, path string, b *Buffer) {
	r.fields(n, path, bufferKeys, func(name, key string, v *yaml.Node) {
		switch name {
		case "max_bytes":
			r.size(v, key, &b.MaxBytes)
		case "max_messages":
			r.integer(v, key, &b.MaxMessages)
		case "max_age":
			r.duration(v, key, &b.MaxAge)
		case "overflow":
			r.str(v, key, &b.Overflow)
		}
	})
}
