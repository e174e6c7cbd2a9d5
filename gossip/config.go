package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"golang.org/x/time/rate"
)

// KeySize is the length of Config.SecretKey: an AES-256 key.
const KeySize = 32

// Refusal reasons passed to Config.OnRefused.
const (
	// RefusedCluster: a node whose meta names another cluster.
	RefusedCluster = "cluster"
	// RefusedMeta: a node whose meta does not decode.
	RefusedMeta = "meta"
	// RefusedName: a node claiming the name of a live node at another address.
	RefusedName = "name"
	// RefusedKey: gossip that the cluster's key does not open (another key,
	// or none), as memberlist reports it in its log.
	RefusedKey = "key"
	// RefusedJoinRate: a new node beyond the rate of new nodes admitted.
	RefusedJoinRate = "join_rate"
)

// RefusalReasons lists every reason OnRefused is called with.
var RefusalReasons = []string{RefusedCluster, RefusedMeta, RefusedName, RefusedKey, RefusedJoinRate}

// ErrConfig is wrapped by every error about a bad Config.
var ErrConfig = errors.New("gossip: bad config")

// Defaults of the Config fields left zero.
const (
	DefaultReresolveInterval = 30 * time.Second
	DefaultJoinRate          = rate.Limit(10)
	DefaultJoinBurst         = 128
	DefaultLeaveTimeout      = 5 * time.Second
	DefaultLogInterval       = time.Minute
)

// Config configures Start.
type Config struct {
	Cluster string // this node's cluster; nodes whose meta names another are refused
	Node    string // this node's name, unique in the cluster
	// Bind is the host:port gossip listens on (UDP and TCP); port 0 picks one.
	Bind string
	// Advertise is the host:port other nodes reach this node at; default
	// Bind (memberlist picks an address when Bind's host is unspecified).
	Advertise string
	// Seeds are host:port of other nodes of the cluster; a host may be a DNS
	// name, and every address it resolves to is a seed.
	Seeds []string
	// SecretKey is the cluster's gossip key (KeySize bytes).
	SecretKey []byte
	// Profile is "lan" (default) or "wan": memberlist's timing defaults.
	Profile string
	// Meta is what this node announces; Meta.Cluster is set to Cluster.
	Meta   Meta
	Logger *slog.Logger // default slog.Default()
	// Resolver resolves a seed's host; default net.DefaultResolver.LookupNetIP.
	Resolver func(ctx context.Context, host string) ([]netip.Addr, error)
	// ReresolveInterval is how often seeds are resolved and joined again
	// while the node is not alone; alone, it retries sooner with backoff.
	ReresolveInterval time.Duration
	// JoinRate and JoinBurst bound the new nodes admitted (a flood of joins
	// is refused past them, reason RefusedJoinRate).
	JoinRate  rate.Limit
	JoinBurst int
	// LeaveTimeout bounds Close's wait for its leave to go out: half for
	// the Leaving mark in the meta, half for memberlist's leave. Both take
	// well under 0.3 s on an idle machine; the bound only matters under
	// load, where a mark not sent in time makes the others record a death
	// instead of a leave (5 s: 2 s was once too little under -race).
	LeaveTimeout time.Duration
	// LogInterval: warnings about refusals are logged once per reason per interval.
	LogInterval time.Duration
	// OnRefused is called for every refusal, with one of RefusalReasons.
	// It must not block, nor call back into Gossip.
	OnRefused func(reason string)
	// Tune, if set, adjusts memberlist's config last (tests: fast timings).
	Tune func(*memberlist.Config)
}

func (c *Config) withDefaults() Config {
	o := *c
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Resolver == nil {
		o.Resolver = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if o.ReresolveInterval <= 0 {
		o.ReresolveInterval = DefaultReresolveInterval
	}
	if o.JoinRate <= 0 {
		o.JoinRate = DefaultJoinRate
	}
	if o.JoinBurst <= 0 {
		o.JoinBurst = DefaultJoinBurst
	}
	if o.LeaveTimeout <= 0 {
		o.LeaveTimeout = DefaultLeaveTimeout
	}
	if o.LogInterval <= 0 {
		o.LogInterval = DefaultLogInterval
	}
	if o.OnRefused == nil {
		o.OnRefused = func(string) {}
	}
	if o.Profile == "" {
		o.Profile = "lan"
	}
	o.Meta.Cluster = o.Cluster
	return o
}

func (c *Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Cluster == "":
		return bad("cluster is empty")
	case c.Node == "":
		return bad("node is empty")
	case len(c.SecretKey) != KeySize:
		return bad("secret key is %d bytes, want %d", len(c.SecretKey), KeySize)
	case c.Profile != "lan" && c.Profile != "wan":
		return bad("profile %q: want lan or wan", c.Profile)
	}
	if _, _, err := splitHostPort(c.Bind); err != nil {
		return bad("bind %q: %v", c.Bind, err)
	}
	if c.Advertise != "" {
		if _, _, err := splitHostPort(c.Advertise); err != nil {
			return bad("advertise %q: %v", c.Advertise, err)
		}
	}
	for i, s := range c.Seeds {
		if _, _, err := splitHostPort(s); err != nil {
			return bad("seeds[%d] %q: %v", i, s, err)
		}
	}
	if _, err := c.Meta.Encode(); err != nil {
		return bad("meta: %v", err)
	}
	return nil
}

// splitHostPort splits host:port with a numeric port.
func splitHostPort(hp string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q is not a number 0-65535", ps)
	}
	return host, int(port), nil
}

// memberlistConfig builds memberlist's config from c (validated, with defaults).
func (c *Config) memberlistConfig() (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	if c.Profile == "wan" {
		mc = memberlist.DefaultWANConfig()
	}
	mc.Name = c.Node
	host, port, _ := splitHostPort(c.Bind)
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if c.Advertise != "" {
		mc.AdvertiseAddr, mc.AdvertisePort, _ = splitHostPort(c.Advertise)
	}
	kr, err := memberlist.NewKeyring(nil, c.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("%w: secret key: %v", ErrConfig, err)
	}
	mc.Keyring = kr
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	return mc, nil
}
