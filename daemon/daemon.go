package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/buffer"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/gossip"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/spool"
	"github.com/wandist/wandist/transport"
	"golang.org/x/time/rate"
)

// ALPN is the protocol name negotiated on every link; it versions the link protocol.
const ALPN = "wandist/1"

// ErrClosed is returned by operations on a closed daemon.
var ErrClosed = errors.New("daemon: closed")

// Options are what a Daemon needs besides its config. The zero value works.
type Options struct {
	// Logger receives the daemon's logs; default slog.Default().
	Logger *slog.Logger
	// LogLevel, if set, is the level Logger's handler filters by: a reload
	// then applies a changed log.level to it. Without it a reload that
	// changes log.level is refused (ErrNeedsRestart), as one that changes
	// log.format always is.
	LogLevel *slog.LevelVar
	// Key, if set, is used instead of loading Config.Identity.
	Key ed25519.PrivateKey
	// Transports overrides the transports by name ("quic", "tcp"), e.g. with
	// transport.NewMem in tests. Default: QUIC and TCP/yamux.
	Transports map[string]transport.Transport
	// Now is the clock; default time.Now.
	Now func() time.Time

	// DigestInterval is how often each link checks membership with a
	// digest; default 10s.
	DigestInterval time.Duration
	// Alerts are the backlog alert thresholds.
	Alerts AlertOptions
	// Source, if set, reads the config again for a reload requested on the
	// admin listener (POST /v1/reload); wandistd run sets it to its file.
	Source func() (*configs.Config, error)
	// GossipTune, if set, adjusts memberlist's config (tests: fast timings).
	GossipTune func(*memberlist.Config)
	// LookupHost resolves the names in remotes[].seeds to every address
	// they have; default net.DefaultResolver.LookupHost.
	LookupHost func(ctx context.Context, host string) ([]string, error)
}

// Daemon is one running wandistd node.
type Daemon struct {
	cfg         *configs.Config // never mutated after New
	logLevel    *slog.LevelVar  // Options.LogLevel, or nil; set in New, then only through its own methods
	log         *slog.Logger
	now         func() time.Time
	id          auth.Identity
	incarnation uint64
	pins        *auth.PinSet
	transports  map[string]transport.Transport
	groups      *groups.Registry
	hold        *hold // messages waiting on this node (hold.go)
	topo        topologyState
	metrics     *metrics
	local       *localServer
	admin       *adminServer

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // every goroutine the daemon started

	peersMu sync.RWMutex
	peers   map[auth.PeerID]*peer // guarded by peersMu
	// peersGen counts the changes of peers (bumped with peersMu held for
	// writing): a routeCache is good while it has not moved.
	peersGen atomic.Uint64

	reloadMu sync.Mutex // one Reload at a time
	// retired holds the peers a reload removed, guarded by reloadMu: a peer
	// added again goes on from their sequence numbers and positions, which
	// its remote remembers (a fresh start at Seq 1 would be taken for
	// duplicates there and dropped).
	retired map[auth.PeerID]*peer
	current atomic.Pointer[configs.Config] // the config in force: d.cfg at start, then each reloaded one (its fixed parts equal d.cfg's)

	linksMu sync.Mutex         // guards upLinks
	upLinks map[*link]struct{} // links that receive membership deltas

	listenMu  sync.Mutex
	listeners map[string]transport.Listener // by transport name; guarded by listenMu

	admit         admission // handshake rates per source address and in all
	handshakeLogs sync.Map  // reason -> *logOnce: refused-handshake warnings, at most one per reason per interval
	streamLog     logOnce   // refused-stream warnings, likewise
	rejectLogs    sync.Map  // "reason claimed" -> *logOnce: rejection warnings, likewise (onReject)
	rejectLogN    atomic.Int64
	peerWarns     sync.Map // peerReason -> *peerWarn: warnings about what a peer sent (peerlog.go)

	disc        discovery      // remote clusters from seeds (discover.go)
	relay       relayState     // relays in progress, link events (relay.go)
	gwm         gatewayMembers // membership through gateways (gatewaymembers.go)
	viewVersion atomic.Uint64  // counts changes of this node's view of its cluster (nodes.go)

	mailboxSeq atomic.Uint64
	mailboxes  sync.Map // uint64 -> *mailbox

	digestInterval time.Duration // from Options
	alerts         AlertOptions  // from Options, with defaults
	source         func() (*configs.Config, error)
	lookupHost     func(ctx context.Context, host string) ([]string, error) // from Options, or the default resolver

	history backlogHistory // recent backlog per destination, for the status page (history.go)

	gossip     atomic.Pointer[gossip.Gossip] // set by Start; nil without gossip.bind (cluster.go)
	gossipTune func(*memberlist.Config)      // from Options

	spool     *spool.Spool // nil without spool.dir
	durableID uint64       // the spool's durable stream id, 0 without a spool

	nodeCert     *x509.Certificate    // the leaf of the config's certificate; nil: self-signed
	expiryWarned map[string]time.Time // certificate -> last expiry warning; owned by the janitor

	closeOnce sync.Once
	closing   atomic.Bool // set when Close starts
	closeErr  error
}

// New builds a daemon from cfg (validated and copied here) without starting it.
func New(cfg *configs.Config, opts Options) (*Daemon, error) {
	if cfg == nil {
		return nil, errors.New("daemon: nil config")
	}
	c := *cfg
	c.Peers = append([]configs.Peer(nil), cfg.Peers...)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{
		cfg:      &c,
		log:      opts.Logger,
		logLevel: opts.LogLevel,
		now:      opts.Now,
		pins:     auth.NewPinSet(),
		peers:    map[auth.PeerID]*peer{},
		relay:    relayState{lim: defaultPipeLimits},
		upLinks:  map[*link]struct{}{},

		digestInterval: opts.DigestInterval,
		alerts:         opts.Alerts.withDefaults(),
		source:         opts.Source,
		lookupHost:     opts.LookupHost,
		gossipTune:     opts.GossipTune,
	}
	if d.digestInterval <= 0 {
		d.digestInterval = 10 * time.Second
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.lookupHost == nil {
		d.lookupHost = net.DefaultResolver.LookupHost
	}
	if d.now == nil {
		d.now = time.Now
	}
	d.log = d.log.With("node", c.Cluster+"/"+c.Node)
	key := opts.Key
	if key == nil {
		var err error
		if key, err = auth.LoadKeyFile(c.Identity); err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
	}
	d.id = auth.Identity{ID: auth.PeerID{Cluster: c.Cluster, Node: c.Node}, Key: key}
	if err := d.loadCertificate(&c); err != nil {
		return nil, err
	}
	d.pins.SetClock(d.now)
	d.expiryWarned = map[string]time.Time{}
	// The incarnation is the start time in nanoseconds: it differs at every
	// start and grows from one run to the next, so a peer can tell that
	// membership of an older run is stale.
	d.incarnation = uint64(time.Now().UnixNano())
	// Mailbox ids carry 24 bits of the incarnation so that an id from an
	// earlier run of this node never names a mailbox of this run.
	d.mailboxSeq.Store((d.incarnation & 0xffffff) << 40)
	d.admit.rate, d.admit.burst = rate.Limit(c.Link.HandshakeRate), c.Link.HandshakeBurst
	d.admit.total = rate.Limit(c.Link.HandshakeRateTotal)
	d.metrics = newMetrics(d)
	d.current.Store(d.cfg) // read by the metrics' collectors
	if err := d.applyTrust(&c); err != nil {
		return nil, err
	}
	d.groups = groups.New(groups.NodeID{Cluster: c.Cluster, Node: c.Node}, d.publishDelta)
	d.groups.SetPolicy(d.membershipPolicy(c.Groups))
	d.hold = newHold(d)
	d.gwm.wake = make(chan struct{}, 1)

	d.transports = opts.Transports
	if d.transports == nil {
		d.transports = d.defaultTransports()
	}
	d.initDiscovery(&c)
	if err := d.addPeers(c.Peers); err != nil {
		return nil, err
	}
	if err := d.openSpool(key); err != nil {
		return nil, err
	}
	d.current.Store(d.cfg)
	return d, nil
}

// defaultTransports are QUIC and TCP/yamux with the link settings.
func (d *Daemon) defaultTransports() map[string]transport.Transport {
	topts := d.transportOptions()
	return map[string]transport.Transport{
		"quic": transport.NewQUIC(topts),
		"tcp":  transport.NewTCP(topts),
	}
}

// transportOptions are the transports' options from the link settings.
func (d *Daemon) transportOptions() transport.Options {
	lc := d.cfg.Link
	return transport.Options{
		HandshakeTimeout:   lc.HandshakeTimeout,
		KeepAlivePeriod:    lc.KeepaliveInterval,
		IdleTimeout:        lc.KeepaliveTimeout,
		Logger:             d.log,
		OnHandshakeError:   d.onHandshakeError,
		MaxIncomingStreams: lc.MaxStreams,
		QUICConns:          lc.QUICConnections,
		OnStreamRefused:    d.onStreamRefused,
		Admit:              d.admit.admit,
		ValidateSource:     d.admit.mustValidate,
		OnRetry:            func(net.Addr) { d.metrics.quicRetries.Inc() },
		OnInitialDropped:   func(net.Addr) { d.metrics.quicInitialsDropped.Inc() },
		HelloTimeout:       lc.HelloTimeout,
	}
}

// addPeers pins the configured peers' keys and makes their buffers.
func (d *Daemon) addPeers(pcs []configs.Peer) error {
	for _, pc := range pcs {
		id := auth.PeerID{Cluster: pc.Cluster, Node: pc.Node}
		d.pins.Set(id, pc.PublicKeys)
		d.admit.trustAddress(pc.Address)
		tr := d.transports[pc.Transport]
		if tr == nil {
			return fmt.Errorf("peer %s: transport %q not available", id, pc.Transport)
		}
		if _, err := buffer.ParsePolicy(pc.Buffer.Overflow); err != nil {
			return fmt.Errorf("peer %s: %w", id, err)
		}
		d.peers[id] = newPeer(d, id, pc, tr, d.newQueue(pc))
		d.peersGen.Add(1)
	}
	return nil
}

// Config returns the config in force, the last one Reload applied (do not
// modify it).
func (d *Daemon) Config() *configs.Config { return d.current.Load() }

// Incarnation returns this run's incarnation number.
func (d *Daemon) Incarnation() uint64 { return d.incarnation }

// PublicKey returns the node's public key.
func (d *Daemon) PublicKey() ed25519.PublicKey { return d.id.Public() }

// Groups returns the group registry.
func (d *Daemon) Groups() *groups.Registry { return d.groups }

// Start opens the listeners, the local socket and the admin listener, and
// starts dialling peers. It returns once everything listens.
func (d *Daemon) Start(ctx context.Context) error {
	d.ctx, d.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	d.hold.start(d.now())
	fail := func(err error) error {
		d.Close()
		return err
	}
	if a := d.cfg.Listen.QUIC; a != "" {
		if err := d.listen("quic", a); err != nil {
			return fail(err)
		}
	}
	if a := d.cfg.Listen.TCP; a != "" {
		if err := d.listen("tcp", a); err != nil {
			return fail(err)
		}
	}
	if d.cfg.Local.Socket != "" {
		ls, err := startLocal(d, d.cfg.Local.Socket)
		if err != nil {
			return fail(err)
		}
		d.local = ls
	}
	if d.cfg.Admin.Listen != "" {
		as, err := startAdmin(d, d.cfg.Admin.Listen)
		if err != nil {
			return fail(err)
		}
		d.admin = as
	}
	if err := d.startGossip(); err != nil {
		return fail(err)
	}
	for _, p := range d.peerList() {
		d.startPeer(p)
	}
	d.startDiscovery()
	d.startGatewayMembers()
	d.wg.Go(d.janitor)
	d.wg.Go(func() { d.hold.run(d.ctx) })
	d.log.Info("started", "incarnation", fmt.Sprintf("%016x", d.incarnation),
		"quic", d.ListenAddr("quic"), "tcp", d.ListenAddr("tcp"), "socket", d.cfg.Local.Socket,
		"public_key", auth.FormatPublicKey(d.id.Public()))
	return nil
}

// ListenAddr returns the bound address of the transport's listener, or "".
func (d *Daemon) ListenAddr(name string) string {
	d.listenMu.Lock()
	defer d.listenMu.Unlock()
	if ln := d.listeners[name]; ln != nil {
		return ln.Addr().String()
	}
	return ""
}

// AdminAddr returns the bound admin address, or "".
func (d *Daemon) AdminAddr() string {
	if d.admin == nil {
		return ""
	}
	return d.admin.ln.Addr().String()
}

// janitor samples the backlog rates, raises backlog alerts, and reports
// peers unreachable past the grace, once a second.
func (d *Daemon) janitor() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			now := d.now()
			for _, p := range d.peerList() {
				st := p.queue.Stats()
				p.rates.sample(now, st.Enqueued, st.Dequeued)
				d.checkBacklog(p, now)
				d.checkUnreachable(p, now)
				d.closeIdle(p)
			}
			d.history.record(now, d.peerList())
			d.checkCertificates(now)
			d.sweepGone()
		}
	}
}

// Close stops the daemon: links get GoAway, listeners and the socket close,
// and it waits for every goroutine it started. Idempotent.
func (d *Daemon) Close() error {
	d.closeOnce.Do(func() {
		d.closing.Store(true)
		if d.cancel == nil {
			if d.spool != nil {
				d.closeErr = d.spool.Close()
			}
			return
		}
		d.listenMu.Lock()
		for _, ln := range d.listeners {
			ln.Close()
		}
		d.listenMu.Unlock()
		if d.local != nil {
			d.local.close()
		}
		d.closeGossip()
		// Tell every peer this node is leaving, in parallel, then stop.
		var wg sync.WaitGroup
		for _, p := range d.peerList() {
			wg.Go(p.closeLink)
		}
		wg.Wait()
		d.cancel(ErrClosed)
		if d.admin != nil {
			d.admin.close()
		}
		d.wg.Wait()
		if d.spool != nil {
			if err := d.spool.Close(); err != nil {
				d.closeErr = fmt.Errorf("spool: %w", err)
			}
		}
	})
	return d.closeErr
}

// peer returns a peer by name, or nil.
func (d *Daemon) peer(cluster, node string) *peer {
	d.peersMu.RLock()
	defer d.peersMu.RUnlock()
	return d.peers[auth.PeerID{Cluster: cluster, Node: node}]
}

// routeCache is one sender's memory of its last route: the closest members
// of the last group it sent to, and the last peer it sent to. It spares a
// local client's stream of sends a lock and a map lookup each. Owned by one
// goroutine (a local client's reader).
type routeCache struct {
	closest       groups.ClosestCache
	cluster, node string
	peer          *peer // nil: empty
	peersGen      uint64
}

// peerCached is peer through the caller's cache rc (nil: none).
func (d *Daemon) peerCached(rc *routeCache, cluster, node string) *peer {
	if rc == nil {
		return d.peer(cluster, node)
	}
	gen := d.peersGen.Load() // read first: a change during the lookup makes the next call look again
	if rc.peer != nil && rc.peersGen == gen && rc.cluster == cluster && rc.node == node {
		return rc.peer
	}
	p := d.peer(cluster, node)
	rc.cluster, rc.node, rc.peer, rc.peersGen = cluster, node, p, gen
	return p
}

// peerList returns the peers, in no order.
func (d *Daemon) peerList() []*peer {
	d.peersMu.RLock()
	defer d.peersMu.RUnlock()
	out := make([]*peer, 0, len(d.peers))
	for _, p := range d.peers {
		out = append(out, p)
	}
	return out
}

// newQueue makes the outbound buffer for a peer from its (validated) config.
func (d *Daemon) newQueue(pc configs.Peer) *buffer.Queue {
	return buffer.New(queueLimits(pc), d.now)
}

// queueLimits returns a peer's buffer limits from its (validated) config.
func queueLimits(pc configs.Peer) buffer.Limits {
	pol, _ := buffer.ParsePolicy(pc.Buffer.Overflow)
	return buffer.Limits{
		MaxBytes:    pc.Buffer.MaxBytes,
		MaxMessages: pc.Buffer.MaxMessages,
		MaxAge:      pc.Buffer.MaxAge,
		Overflow:    pol,
	}
}
