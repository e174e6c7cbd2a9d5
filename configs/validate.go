package configs

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Validate checks a Config built in code with the same rules Parse applies
// to a file, and returns an ErrorList (without line numbers) or nil.
//
// It first fills in fields whose zero value is not valid: zero link
// settings, buffer limits, overflow, log level and format get their
// defaults; Local.Socket gets DefaultSocket; a peer's empty Transport and
// Mode get theirs, and a peer's zero Buffer fields come from c.Buffer (an
// all-zero peer Buffer is c.Buffer). Zero Groups.UnreachableGrace,
// Groups.RejoinGrace and Buffer.MaxAge are kept: they mean "no grace" and
// "no age limit". Start from Default() to get every default. Validate
// leaves a Config returned by Parse unchanged.
func (c *Config) Validate() error {
	c.fillZero()
	c.fill()
	r := newReporter(c.Path)
	r.check(c)
	return r.result()
}

// fillZero sets fields whose zero value is invalid to their defaults.
func (c *Config) fillZero() {
	d := Default()
	l := &c.Link
	setIfZero(&l.KeepaliveInterval, d.Link.KeepaliveInterval)
	setIfZero(&l.KeepaliveTimeout, d.Link.KeepaliveTimeout)
	setIfZero(&l.HandshakeTimeout, d.Link.HandshakeTimeout)
	setIfZero(&l.ReconnectMin, d.Link.ReconnectMin)
	setIfZero(&l.ReconnectMax, d.Link.ReconnectMax)
	setIfZero(&l.MaxFrameSize, d.Link.MaxFrameSize)
	setIfZero(&l.MaxStreams, d.Link.MaxStreams)
	setIfZero(&l.HandshakeRate, d.Link.HandshakeRate)
	setIfZero(&l.HandshakeBurst, d.Link.HandshakeBurst)
	setIfZero(&l.HandshakeRateTotal, d.Link.HandshakeRateTotal)
	setIfZero(&l.HelloTimeout, d.Link.HelloTimeout)
	setIfZero(&l.MaxLinkMemory, d.Link.MaxLinkMemory)
	setIfZero(&l.QUICConnections, d.Link.QUICConnections)
	fillBuffer(&c.Buffer, d.Buffer)
	setIfZero(&c.Spool.MaxBytes, int64(DefaultSpoolMaxBytes))
	setIfZero(&c.Gossip.Profile, GossipLAN)
	setIfZero(&c.Local.MaxClients, DefaultMaxClients)
	setIfZero(&c.Local.HelloTimeout, DefaultHelloTimeout)
	setIfZero(&c.Local.ClientBuffer, DefaultClientBuffer)
	setIfZero(&c.Local.InboxFull, InboxPark)
	setIfZero(&c.Local.HoldBytes, DefaultHoldBytes)
	setIfZero(&c.Local.HoldMessages, DefaultHoldMessages)
	g := &c.Groups
	setIfZero(&g.MaxMembersPerPeer, d.Groups.MaxMembersPerPeer)
	setIfZero(&g.MaxGroupsPerPeer, d.Groups.MaxGroupsPerPeer)
	setIfZero(&g.MaxPartitionsPerPeer, d.Groups.MaxPartitionsPerPeer)
	setIfZero(&g.MaxSnapshotBytes, d.Groups.MaxSnapshotBytes)
	setIfZero(&g.MembershipRate, d.Groups.MembershipRate)
	setIfZero(&g.SnapshotTimeout, d.Groups.SnapshotTimeout)
	setIfZero(&c.Log.Level, d.Log.Level)
	setIfZero(&c.Log.Format, d.Log.Format)
	for i := range c.Peers {
		if c.Peers[i].Buffer == (Buffer{}) {
			c.Peers[i].Buffer = c.Buffer
		}
		fillBuffer(&c.Peers[i].Buffer, c.Buffer)
	}
}

func fillBuffer(b *Buffer, from Buffer) {
	setIfZero(&b.MaxBytes, from.MaxBytes)
	setIfZero(&b.MaxMessages, from.MaxMessages)
	setIfZero(&b.Overflow, from.Overflow)
}

func setIfZero[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// fill sets the defaults that depend on other fields: the local socket
// path and each peer's transport and mode.
func (c *Config) fill() {
	c.fillTrust()
	if c.Local.Socket == "" && validName(c.Cluster) && validName(c.Node) {
		c.Local.Socket = DefaultSocket()
	}
	for i := range c.Peers {
		p := &c.Peers[i]
		setIfZero(&p.Transport, TransportQUIC)
		if p.Mode == "" {
			p.Mode = ModeAccept
			if p.Address != "" {
				p.Mode = ModeBoth
			}
		}
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

func validName(s string) bool { return nameRE.MatchString(s) }

// check applies every rule to c, reporting through r.
func (r *reporter) check(c *Config) {
	r.checking = true
	r.checkName("cluster", c.Cluster)
	r.checkName("node", c.Node)
	if c.Identity == "" {
		r.keyf("identity", "required: the path of this node's private key file (written by `wandistd keygen -o FILE`)")
	}
	r.checkAddr("listen.quic", c.Listen.QUIC, true)
	r.checkAddr("listen.tcp", c.Listen.TCP, true)
	switch {
	case c.Local.Socket == "":
		if validName(c.Cluster) && validName(c.Node) {
			r.keyf("local.socket", "required")
		}
	case len(c.Local.Socket) > MaxSocketPath:
		r.keyf("local.socket", "path %q is %d bytes, longer than the %d a Unix socket allows; set a shorter local.socket",
			abbrev(c.Local.Socket), len(c.Local.Socket), MaxSocketPath)
	}
	if c.Local.MaxClients < 0 {
		r.keyf("local.max_clients", "must not be negative, got %d", c.Local.MaxClients)
	}
	if t := c.Local.HelloTimeout; t < 100*time.Millisecond || t > time.Minute {
		r.keyf("local.hello_timeout", "must be between 100ms and 1m, got %v", t)
	}
	if b := c.Local.ClientBuffer; b < 64<<10 || b > 1<<30 {
		r.keyf("local.client_buffer", "must be between 64KiB and 1GiB, got %d bytes", b)
	}
	r.checkEnum("local.inbox_full", c.Local.InboxFull, InboxPark, InboxDrop, InboxHold)
	if b := c.Local.HoldBytes; b < 1<<20 || b > 16<<30 {
		r.keyf("local.hold_bytes", "must be between 1MiB and 16GiB, got %d bytes", b)
	}
	if n := c.Local.HoldMessages; n < 1000 || n > 100_000_000 {
		r.keyf("local.hold_messages", "must be between 1000 and 100000000, got %d", n)
	}
	r.checkAddr("admin.listen", c.Admin.Listen, true)
	if a := c.Admin.Listen; a != "" && c.Admin.Token == "" && !loopback(a) {
		r.keyf("admin.listen", "%s is not a loopback address: set admin.token, or listen on 127.0.0.1 or [::1]", a)
	}
	if c.Admin.Pprof && c.Admin.Token == "" {
		r.keyf("admin.pprof", "needs admin.token: profiles show goroutine stacks and heap contents, so they are served only to requests that carry the token; set admin.token or turn pprof off")
	}
	if a := c.Admin.Listen; a != "" && a == c.Listen.TCP && !strings.HasSuffix(a, ":0") {
		r.keyf("admin.listen", "same address as listen.tcp (%s)", a)
	}
	r.checkLink(&c.Link)
	r.checkGroups(&c.Groups, c.Link.MaxFrameSize)
	r.checkBuffer("buffer", c.Buffer, nil)
	r.checkEnum("log.level", c.Log.Level, LogDebug, LogInfo, LogWarn, LogError)
	r.checkEnum("log.format", c.Log.Format, FormatText, FormatJSON)
	r.checkTrust(c)
	r.checkPeers(c)
	r.checkGossip(&c.Gossip)
}

func (r *reporter) checkName(key, s string) {
	switch {
	case s == "":
		r.keyf(key, "required")
	case !validName(s):
		r.keyf(key, "bad name %q: want 1-63 characters of a-z, 0-9, '_', '.' and '-', starting with a letter or digit", abbrev(s))
	}
}

func (r *reporter) checkEnum(key, s string, allowed ...string) {
	if contains(allowed, s) {
		return
	}
	msg := fmt.Sprintf("must be one of %s; got %q", strings.Join(allowed, ", "), abbrev(s))
	if g := suggest(s, allowed); g != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", g)
	}
	r.keyf(key, "%s", msg)
}

// checkAddr checks an optional host:port. Listen addresses may leave the
// host out and use port 0 (any free port); dial addresses may not.
func (r *reporter) checkAddr(key, s string, listen bool) {
	if s == "" {
		return
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		r.keyf(key, "bad address %q: %v; want host:port", abbrev(s), err)
		return
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		r.keyf(key, "bad address %q: port %q is not a number from 0 to 65535", abbrev(s), abbrev(port))
		return
	}
	if listen {
		return
	}
	if host == "" {
		r.keyf(key, "bad address %q: a host to dial is required", abbrev(s))
	} else if n == 0 {
		r.keyf(key, "bad address %q: port 0 cannot be dialed", abbrev(s))
	}
}

func (r *reporter) checkLink(l *Link) {
	if l.KeepaliveInterval <= 0 {
		r.keyf("link.keepalive_interval", "must be greater than 0, got %v", l.KeepaliveInterval)
	}
	switch {
	case l.KeepaliveTimeout > MaxKeepaliveTimeout:
		r.keyf("link.keepalive_timeout", "must be at most %v, got %v", MaxKeepaliveTimeout, l.KeepaliveTimeout)
	case l.KeepaliveTimeout <= l.KeepaliveInterval && l.KeepaliveInterval > 0 && !r.reported["link.keepalive_interval"]:
		r.keyf("link.keepalive_timeout", "must be longer than link.keepalive_interval (%v), got %v", l.KeepaliveInterval, l.KeepaliveTimeout)
	}
	if l.HandshakeTimeout <= 0 {
		r.keyf("link.handshake_timeout", "must be greater than 0, got %v", l.HandshakeTimeout)
	}
	if l.ReconnectMin <= 0 {
		r.keyf("link.reconnect_min", "must be greater than 0, got %v", l.ReconnectMin)
	} else if l.ReconnectMax < l.ReconnectMin && !r.reported["link.reconnect_min"] {
		r.keyf("link.reconnect_max", "must be at least link.reconnect_min (%v), got %v", l.ReconnectMin, l.ReconnectMax)
	}
	if l.MaxFrameSize < MinFrameSize || l.MaxFrameSize > MaxFrameSize {
		r.keyf("link.max_frame_size", "must be from %d (4KiB) to %d (64MiB) bytes, got %d", MinFrameSize, MaxFrameSize, l.MaxFrameSize)
	}
	if l.MaxStreams < 4 || l.MaxStreams > 1024 {
		r.keyf("link.max_streams", "must be from 4 (a link uses 4 streams from each side) to 1024, got %d", l.MaxStreams)
	}
	if l.QUICConnections < 1 || l.QUICConnections > MaxQUICConnections {
		r.keyf("link.quic_connections", "must be from 1 to %d, got %d", MaxQUICConnections, l.QUICConnections)
	}
	r.checkLinkMemory(l)
	if l.HandshakeRate < 1 || l.HandshakeRate > 100000 {
		r.keyf("link.handshake_rate", "must be from 1 to 100000 handshakes a second, got %d", l.HandshakeRate)
	}
	if l.HandshakeBurst < 1 || l.HandshakeBurst > 100000 {
		r.keyf("link.handshake_burst", "must be from 1 to 100000, got %d", l.HandshakeBurst)
	}
	if l.HandshakeRateTotal < 1 || l.HandshakeRateTotal > 100000 {
		r.keyf("link.handshake_rate_total", "must be from 1 to 100000 handshakes a second, got %d", l.HandshakeRateTotal)
	}
	if l.HelloTimeout <= 0 {
		r.keyf("link.hello_timeout", "must be greater than 0, got %v", l.HelloTimeout)
	}
}

// checkLinkMemory checks link.max_link_memory and that max_streams ×
// max_frame_size stays within it: the bytes of frames in progress a peer
// can make this node hold on one link.
func (r *reporter) checkLinkMemory(l *Link) {
	if m := l.MaxLinkMemory; m < MinLinkMemory || m > MaxLinkMemory {
		r.keyf("link.max_link_memory", "must be from %d (1MiB) to %d (16GiB) bytes, got %d", int64(MinLinkMemory), int64(MaxLinkMemory), m)
		return
	}
	if l.MaxStreams < 4 || l.MaxStreams > 1024 || l.MaxFrameSize < MinFrameSize || l.MaxFrameSize > MaxFrameSize ||
		l.QUICConnections < 1 || l.QUICConnections > MaxQUICConnections ||
		r.reported["link.max_streams"] || r.reported["link.max_frame_size"] || r.reported["link.quic_connections"] {
		return // reported already
	}
	need := int64(l.MaxStreams) * int64(l.MaxFrameSize) * int64(l.QUICConnections)
	if need <= l.MaxLinkMemory {
		return
	}
	key := "link.max_frame_size" // report on the line of whichever of the two is in the file
	if _, ok := r.lines[key]; !ok {
		if _, ok := r.lines["link.max_streams"]; ok {
			key = "link.max_streams"
		} else if _, ok := r.lines["link.quic_connections"]; ok {
			key = "link.quic_connections"
		}
	}
	if l.QUICConnections > 1 {
		r.keyf(key, "link.max_streams (%d) × link.max_frame_size (%d bytes) × link.quic_connections (%d) = %s a peer can make this node hold per link, more than link.max_link_memory (%s); lower one, or raise link.max_link_memory (at most 16GiB)",
			l.MaxStreams, l.MaxFrameSize, l.QUICConnections, mib(need), mib(l.MaxLinkMemory))
		return
	}
	r.keyf(key, "link.max_streams (%d) × link.max_frame_size (%d bytes) = %s a peer can make this node hold per link, more than link.max_link_memory (%s); lower either, or raise link.max_link_memory (at most 16GiB)",
		l.MaxStreams, l.MaxFrameSize, mib(need), mib(l.MaxLinkMemory))
}

// mib writes a byte count in MiB, e.g. "1088MiB".
func mib(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + "MiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
}

// checkGroups checks the groups section; maxFrame is link.max_frame_size
// (one frame of a snapshot must fit its budget).
func (r *reporter) checkGroups(g *Groups, maxFrame int) {
	if g.UnreachableGrace < 0 {
		r.keyf("groups.unreachable_grace", "must not be negative, got %v", g.UnreachableGrace)
	}
	if t := g.RejoinGrace; t < 0 || t > MaxRejoinGrace {
		r.keyf("groups.rejoin_grace", "must be from 0 (route on at once) to %v, got %v", MaxRejoinGrace, t)
	}
	if n := g.MaxMembersPerPeer; n < 1 || n > MaxMembersPerPeer {
		r.keyf("groups.max_members_per_peer", "must be from 1 to %d, got %d", MaxMembersPerPeer, n)
	}
	if n := g.MaxGroupsPerPeer; n < 1 || n > MaxGroupsPerPeer {
		r.keyf("groups.max_groups_per_peer", "must be from 1 to %d, got %d", MaxGroupsPerPeer, n)
	}
	if n := g.MaxPartitionsPerPeer; n < 1 || n > MaxPartitionsPerPeer {
		r.keyf("groups.max_partitions_per_peer", "must be from 1 to %d, got %d", MaxPartitionsPerPeer, n)
	}
	switch b := g.MaxSnapshotBytes; {
	case b > MaxSnapshotBytes:
		r.keyf("groups.max_snapshot_bytes", "must be at most %d (16GiB), got %d", int64(MaxSnapshotBytes), b)
	case b < int64(maxFrame) && maxFrame <= MaxFrameSize: // (a bad max_frame_size is reported on its own)
		r.keyf("groups.max_snapshot_bytes", "must be at least link.max_frame_size (%d bytes), so that a snapshot of one frame fits; got %d", maxFrame, b)
	}
	if t := g.SnapshotTimeout; t < MinSnapshotTimeout || t > MaxSnapshotTimeout {
		r.keyf("groups.snapshot_timeout", "must be from %v to %v, got %v", MinSnapshotTimeout, MaxSnapshotTimeout, t)
	}
	if b := g.MembershipRate; b < MinMembershipRate || b > MaxMembershipRate {
		r.keyf("groups.membership_rate", "must be from %d (64KiB) to %d (1GiB) bytes a second, got %d", int64(MinMembershipRate), int64(MaxMembershipRate), b)
	}
}

// checkBuffer checks b at path. For a peer's buffer, parent is the
// top-level buffer: fields equal to it were inherited and are checked (and
// reported) there only.
func (r *reporter) checkBuffer(path string, b Buffer, parent *Buffer) {
	var p Buffer
	peer := parent != nil
	if peer {
		p = *parent
	}
	if b.MaxBytes <= 0 && !(peer && b.MaxBytes == p.MaxBytes) {
		r.keyf(path+".max_bytes", "must be greater than 0, got %d", b.MaxBytes)
	}
	if b.MaxMessages <= 0 && !(peer && b.MaxMessages == p.MaxMessages) {
		r.keyf(path+".max_messages", "must be greater than 0, got %d", b.MaxMessages)
	}
	if b.MaxAge < 0 && !(peer && b.MaxAge == p.MaxAge) {
		r.keyf(path+".max_age", "must not be negative (0 means no age limit), got %v", b.MaxAge)
	}
	if !(peer && b.Overflow == p.Overflow) {
		r.checkEnum(path+".overflow", b.Overflow, OverflowReject, OverflowDropOldest)
	}
}

// loopback reports whether the host of addr is a loopback address or
// localhost. An address that does not parse counts as loopback: checkAddr
// reports it already.
func loopback(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return true
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
