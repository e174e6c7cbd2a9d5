//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wandist/wandist/client"
)

// Options configure a matrix run. Zero fields get the defaults.
type Options struct {
	Profile     string        // "short" (default) or "full"
	Transports  []string      // default quic and tcp
	Rate        int           // messages per second per flow; default 200
	Size        int           // payload bytes; default 256
	BufferBytes int64         // buffer.max_bytes of every peer; default 4 MiB
	MemSlack    int64         // peak RSS allowed above the bound; default 48 MiB
	Warmup      time.Duration // traffic before the fault; default 2 s
	After       time.Duration // traffic after the heal; default 3 s
	Drain       time.Duration // longest wait for the backlog to drain; default 60 s
	Keep        bool          // keep the run directory (configs, logs)
	Logf        func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.Profile == "" {
		o.Profile = "short"
	}
	if len(o.Transports) == 0 {
		o.Transports = []string{"quic", "tcp"}
	}
	if o.Rate <= 0 {
		o.Rate = 200
	}
	if o.Size <= 0 {
		o.Size = 256
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = 4 << 20
	}
	if o.MemSlack <= 0 {
		o.MemSlack = 48 << 20
	}
	if o.Warmup <= 0 {
		o.Warmup = 2 * time.Second
	}
	if o.After <= 0 {
		o.After = 3 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 60 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Client buffers (local.client_buffer, where the daemon supports it): the
// default holds the backlog of any outage of the matrix (about 2.5 MiB
// after 10 s), so that a consumer slower than the burst after a heal loses
// nothing; the stuck consumer's is small, so that it fills quickly.
const (
	clientBuffer      = 8 << 20
	stuckClientBuffer = 1 << 20
	daemonClientBuf   = 64 << 20 // the daemon's own, where it has no such key
)

// ErrSkipped is returned by Run for a scenario this daemon cannot run.
var ErrSkipped = errors.New("chaos: scenario skipped")

// Env is what the scenarios of a run share: the wandistd binary, the
// namespaces and the node keys.
type Env struct {
	Opts       Options
	Dir        string
	Bin        string
	Topo       *Topology
	keys       map[string]string // node -> public key
	clientBuf  bool              // the daemon knows local.client_buffer
	inboxHold  bool              // the daemon knows local.inbox_full: hold
	runs       int               // scenario runs so far (names their directories)
	unregister func()
}

var envSeq int

// NewEnv builds wandistd, creates the topology and the node keys.
func NewEnv(ctx context.Context, o Options) (e *Env, err error) {
	o.defaults()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", namePrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	e = &Env{Opts: o, Dir: dir, keys: map[string]string{}}
	e.unregister = onInterrupt(func() { unmountUnder(dir); os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			e.Close()
			e = nil
		}
	}()
	if e.Bin, err = BuildDaemon(ctx, dir); err != nil {
		return e, err
	}
	envSeq++
	if e.Topo, err = NewTopology(ctx, fmt.Sprintf("%s%d-%d", namePrefix, os.Getpid(), envSeq)); err != nil {
		return e, err
	}
	keyDir := filepath.Join(dir, "keys")
	if err := os.Mkdir(keyDir, 0o700); err != nil {
		return e, err
	}
	for _, n := range []string{"east-1", "west-1"} {
		if e.keys[n], err = Keygen(ctx, e.Bin, keyDir, n); err != nil {
			return e, err
		}
	}
	e.clientBuf = e.supports(ctx, "local:\n  client_buffer: 1MiB\n")
	e.inboxHold = e.supports(ctx, "local:\n  inbox_full: hold\n")
	return e, nil
}

// supports reports whether the daemon accepts a config fragment.
func (e *Env) supports(ctx context.Context, fragment string) bool {
	p := filepath.Join(e.Dir, "probe.yaml")
	cfg := fmt.Sprintf("cluster: probe\nnode: probe\nidentity: %s\n%s", filepath.Join(e.Dir, "keys", "east-1.key"), fragment)
	if os.WriteFile(p, []byte(cfg), 0o600) != nil {
		return false
	}
	_, err := run(ctx, e.Bin, "config", "check", "-c", p)
	return err == nil
}

// Close removes the topology and (unless Keep) the run directory.
func (e *Env) Close() {
	if e.Topo != nil {
		e.Topo.Close()
	}
	unmountUnder(e.Dir)
	if !e.Opts.Keep {
		os.RemoveAll(e.Dir)
	}
	if e.unregister != nil {
		e.unregister()
	}
}

// Window is a span during which a fault was applied.
type Window struct{ Start, End time.Time }

// Sample is the state of the link and the nodes at one moment.
type Sample struct {
	T           time.Time
	State       string // east's link to west: up, down, connecting; "dead" if east is not running, "" if unknown
	RTTMillis   float64
	Queued      int   // messages east holds for west
	EastKB      int64 // resident memory
	WestKB      int64
	Delivered   int // lines the consumer printed so far
	QueuedBytes int64
}

// runState is one scenario run: its nodes, traffic and timeline.
type runState struct {
	env        *Env
	sc         Scenario
	transport  string
	dir        string
	east, west *Node
	consumer   *Consumer
	producers  []*Producer
	mountPoint string

	mu      sync.Mutex
	windows []Window
	via     []string
	notes   []string
	acts    []string // what the timeline did (kills, pauses)
	samples []Sample
	delta   Counters // what the fault paths counted during the faults
}

// clientBuffer is the run's local.client_buffer (0: the daemon's fixed one).
func (r *runState) clientBuffer() int64 {
	switch {
	case !r.env.clientBuf:
		return 0
	case r.sc.Stuck:
		return stuckClientBuffer
	}
	return clientBuffer
}

// bound is the memory a node may hold by its configuration: its outbound
// buffer and the deliveries waiting for its clients.
func (r *runState) bound() int64 {
	cb := r.clientBuffer()
	if cb == 0 {
		cb = daemonClientBuf
	}
	return r.env.Opts.BufferBytes + cb
}

func (r *runState) node(cluster string) *Node {
	if cluster == "west" {
		return r.west
	}
	return r.east
}

// actf records what a scenario's timeline did, for the measured effect.
func (r *runState) actf(format string, args ...any) {
	r.mu.Lock()
	r.acts = append(r.acts, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *runState) window(start, end time.Time) {
	r.mu.Lock()
	r.windows = append(r.windows, Window{start, end})
	r.mu.Unlock()
}

// pause waits d (a scenario's timeline, not a wait for an event).
func (r *runState) pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// fault applies f for hold, then clears it, adding what the fault paths
// counted meanwhile to the run's counters.
func (r *runState) fault(ctx context.Context, f NetFault, hold time.Duration) error {
	via, err := r.env.Topo.Apply(ctx, f)
	if err != nil {
		return err
	}
	before, err := r.env.Topo.Counters(ctx) // after Apply: the shares are of the fault's packets only
	if err != nil {
		return err
	}
	start := time.Now()
	r.mu.Lock()
	r.via = dedupe(append(r.via, via...))
	r.mu.Unlock()
	perr := r.pause(ctx, hold)
	during, err := r.env.Topo.Counters(ctx) // before Clear: tbf's counters go with its qdisc
	if err != nil {
		return err
	}
	if err := r.env.Topo.Clear(ctx); err != nil {
		return err
	}
	r.window(start, time.Now())
	r.mu.Lock()
	r.delta = r.delta.Add(during.Sub(before))
	r.mu.Unlock()
	return perr
}

// faultStep is one fault of a sequence, held for Hold.
type faultStep struct {
	Net  NetFault
	Hold time.Duration
}

// faults applies each step's fault in turn, each replacing the last with no
// healed moment between them (fault would heal and read the counters
// between steps, which takes a few hundred milliseconds), then heals.
func (r *runState) faults(ctx context.Context, steps []faultStep) error {
	var before Counters
	var prev time.Time // when the previous step's fault was applied
	for i, s := range steps {
		via, err := r.env.Topo.Apply(ctx, s.Net)
		if err != nil {
			return err
		}
		start := time.Now()
		if i == 0 {
			if before, err = r.env.Topo.Counters(ctx); err != nil {
				return err
			}
		} else {
			r.window(prev, start)
		}
		prev = start
		r.mu.Lock()
		r.via = dedupe(append(r.via, via...))
		r.mu.Unlock()
		if err := r.pause(ctx, s.Hold-time.Since(start)); err != nil {
			return err
		}
	}
	during, err := r.env.Topo.Counters(ctx) // before Clear: tbf's counters go with its qdisc
	if err != nil {
		return err
	}
	if err := r.env.Topo.Clear(ctx); err != nil {
		return err
	}
	r.window(prev, time.Now())
	r.mu.Lock()
	r.delta = r.delta.Add(during.Sub(before))
	r.mu.Unlock()
	return nil
}

// setup writes the configs, starts both daemons, the consumer and the
// producers' clients, and waits until east sees the consumer's group.
func (r *runState) setup(ctx context.Context) error {
	e := r.env
	port := map[string]int{"quic": 7201, "tcp": 7202}[r.transport]
	if port == 0 {
		return fmt.Errorf("chaos: unknown transport %q (want quic or tcp)", r.transport)
	}
	westIP := e.Topo.NodeIP("west", 0).String()
	mk := func(cluster, node, ip string, base int, peer PeerConfig) (*Node, error) {
		d := filepath.Join(r.dir, node)
		if err := os.MkdirAll(filepath.Join(d, "spool"), 0o700); err != nil {
			return nil, err
		}
		if err := os.Symlink(filepath.Join(e.Dir, "keys", node+".key"), filepath.Join(d, node+".key")); err != nil {
			return nil, err
		}
		cfg := NodeConfig{Cluster: cluster, Node: node, IP: ip, QUICPort: base + 1, TCPPort: base + 2, AdminPort: base + 3,
			Socket: filepath.Join(d, "local.sock"), Spool: true, BufferBytes: e.Opts.BufferBytes, Peers: []PeerConfig{peer}}
		cfg.ClientBuffer, cfg.InboxHold, cfg.QUICConns = r.clientBuffer(), r.sc.InboxHold, r.sc.QUICConns
		return NewNode(e.Bin, e.Topo.NS(cluster), d, cfg)
	}
	var err error
	if r.west, err = mk("west", "west-1", westIP, 7200, PeerConfig{Cluster: "east", Node: "east-1", PublicKey: e.keys["east-1"]}); err != nil {
		return err
	}
	if r.east, err = mk("east", "east-1", e.Topo.NodeIP("east", 0).String(), 7100,
		PeerConfig{Cluster: "west", Node: "west-1", Address: fmt.Sprintf("%s:%d", westIP, port), Transport: r.transport, PublicKey: e.keys["west-1"]}); err != nil {
		return err
	}
	if r.sc.SpoolTmpfs > 0 {
		r.mountPoint = filepath.Join(r.east.Dir, "spool")
		if _, err := run(ctx, "mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", r.sc.SpoolTmpfs), "wdc-spool", r.mountPoint); err != nil {
			r.mountPoint = ""
			return err
		}
	}
	if err := r.west.Start(ctx); err != nil {
		return err
	}
	if err := r.east.Start(ctx); err != nil {
		return err
	}
	if _, err := r.east.WaitLink(ctx, "west-1", true, 20*time.Second); err != nil {
		return err
	}
	if r.consumer, err = StartConsumer(ctx, e.Bin, r.west.Socket, consumerLog(r.dir)); err != nil {
		return err
	}
	for _, f := range Flows {
		p, err := NewProducer(ctx, r.east.Socket, f)
		if err != nil {
			return err
		}
		r.producers = append(r.producers, p)
	}
	return WaitMember(ctx, r.producers[0].c, "west", 20*time.Second)
}

// teardown stops everything the run started.
func (r *runState) teardown() {
	for _, p := range r.producers {
		p.Close()
	}
	if r.consumer != nil {
		r.consumer.Stop()
	}
	for _, n := range []*Node{r.east, r.west} {
		if n != nil {
			n.Stop()
		}
	}
	if r.mountPoint != "" {
		_ = syscall.Unmount(r.mountPoint, syscall.MNT_DETACH)
	}
}

// sample records the link and memory every interval until stop.
func (r *runState) sample(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s := Sample{T: time.Now(), Delivered: r.consumer.Count()}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if st, err := r.east.Status(ctx); err == nil {
			l := st.Link("west-1")
			s.State, s.RTTMillis, s.Queued, s.QueuedBytes = l.State, l.RTTSeconds*1000, l.QueuedMessages, l.QueuedBytes
		} else if r.east.PID() == 0 {
			s.State = "dead"
		}
		cancel()
		s.EastKB, _ = r.east.Memory()
		s.WestKB, _ = r.west.Memory()
		r.mu.Lock()
		r.samples = append(r.samples, s)
		r.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// Run runs one scenario over one transport and judges it. An error means
// the scenario could not be run (setup failed), not that wandist failed.
func (e *Env) Run(ctx context.Context, sc Scenario, transport string) (res *Result, err error) {
	if sc.InboxHold && !e.inboxHold {
		return nil, fmt.Errorf("%w: %s needs local.inbox_full: hold, which this wandistd does not know", ErrSkipped, sc.Name)
	}
	e.runs++
	r := &runState{env: e, sc: sc, transport: transport, dir: filepath.Join(e.Dir, fmt.Sprintf("%02d-%s-%s", e.runs, sc.Name, transport))}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, err
	}
	defer r.teardown()
	if err := e.Topo.Clear(ctx); err != nil {
		return nil, err
	}
	if err := r.setup(ctx); err != nil {
		return nil, fmt.Errorf("%s/%s: setup: %w", sc.Name, transport, err)
	}
	began := time.Now()
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() { r.sample(stopSampling, 200*time.Millisecond) })
	stopSending := make(chan struct{})
	var senders sync.WaitGroup
	rate := e.Opts.Rate
	if sc.Rate > 0 {
		rate = sc.Rate
	}
	for _, p := range r.producers {
		senders.Go(func() { p.Run(stopSending, rate, e.Opts.Size) })
	}
	stopSend := sync.OnceFunc(func() { close(stopSending); senders.Wait() })
	stopSample := sync.OnceFunc(func() { close(stopSampling); sampler.Wait() })
	defer stopSample()
	defer stopSend()

	if err := r.pause(ctx, e.Opts.Warmup); err != nil {
		return nil, err
	}
	metricsBefore := r.metrics(ctx)
	if sc.Do != nil {
		err = sc.Do(ctx, r)
	} else {
		err = r.fault(ctx, *sc.Net, sc.Hold)
	}
	if err != nil {
		return nil, fmt.Errorf("%s/%s: fault: %w", sc.Name, transport, err)
	}
	if err := r.pause(ctx, e.Opts.After); err != nil {
		return nil, err
	}
	stopSend()
	drainStart := time.Now()
	drainErr := r.drain(ctx)
	drainTime := time.Since(drainStart)
	stopSample()

	res = r.result(ctx, metricsBefore)
	res.Began = began
	if e.Opts.Keep {
		r.writeTrace(ctx, began)
	}
	if drainErr != nil {
		res.Notes = append(res.Notes, drainErr.Error())
	}
	res.Notes = append(res.Notes, fmt.Sprintf("drain wait %.1f s", drainTime.Seconds()))
	e.Opts.Logf("%s", res.Summary())
	return res, nil
}

// drain waits until east holds nothing for west and every message that
// must arrive did, or until nothing moves for a while, or the deadline.
func (r *runState) drain(ctx context.Context) error {
	deadline := time.Now().Add(r.env.Opts.Drain)
	lastCount, lastMove := -1, time.Now()
	for {
		n := r.consumer.Count()
		if n != lastCount {
			lastCount, lastMove = n, time.Now()
		}
		queued := -1
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if st, err := r.east.Status(sctx); err == nil {
			queued = st.Link("west-1").QueuedMessages
		}
		cancel()
		if queued == 0 && (r.pending() == 0 || time.Since(lastMove) > 3*time.Second) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backlog not drained after %v: east holds %d messages for west, %d expected messages missing", r.env.Opts.Drain, queued, r.pending())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// pending counts accepted durable and reliable messages not delivered yet.
func (r *runState) pending() int {
	recs := make([][]SendRecord, len(r.producers))
	for i, p := range r.producers {
		recs[i] = p.Records()
	}
	n := 0
	for i, fr := range Check(recs, r.consumer.Deliveries(), time.Time{}) {
		if f := Flows[i]; f.Mode == client.Durable || f.Mode == client.Reliable && f.TTL == 0 {
			n += fr.Lost
		}
	}
	return n
}

// metrics sums both daemons' metrics (those of the running processes).
func (r *runState) metrics(ctx context.Context) map[string]float64 {
	out := map[string]float64{}
	for _, n := range []*Node{r.east, r.west} {
		m, err := n.Metrics(ctx)
		if err != nil {
			continue
		}
		for k, v := range m {
			out[n.Name+":"+k] = v
		}
	}
	return out
}

func metricKeys(m map[string]float64, suffix string) float64 {
	sum := 0.0
	for k, v := range m {
		if strings.HasSuffix(k, suffix) {
			sum += v
		}
	}
	return sum
}

// writeTrace saves every send and delivery of the run (trace.csv: kind,
// flow, seq, milliseconds since the start, outcome) and both daemons'
// final metrics, for diagnosing a failure.
func (r *runState) writeTrace(ctx context.Context, began time.Time) {
	var b strings.Builder
	b.WriteString("kind,flow,seq,ms,outcome\n")
	for _, p := range r.producers {
		for i, rec := range p.Records() {
			fmt.Fprintf(&b, "send,%s,%d,%d,%d\n", p.Flow.Tag, i+1, rec.At.Sub(began).Milliseconds(), rec.Outcome)
		}
	}
	for _, d := range r.consumer.Deliveries() {
		tag := "?"
		if d.Flow >= 0 {
			tag = Flows[d.Flow].Tag
		}
		fmt.Fprintf(&b, "recv,%s,%d,%d,\n", tag, d.Seq, d.At.Sub(began).Milliseconds())
	}
	r.mu.Lock()
	for _, w := range r.windows {
		fmt.Fprintf(&b, "fault,,,%d,%d\n", w.Start.Sub(began).Milliseconds(), w.End.Sub(began).Milliseconds())
	}
	r.mu.Unlock()
	_ = os.WriteFile(filepath.Join(r.dir, "trace.csv"), []byte(b.String()), 0o600)
	for _, n := range []*Node{r.east, r.west} {
		if body, err := n.get(ctx, "/metrics"); err == nil {
			_ = os.WriteFile(filepath.Join(n.Dir, "metrics.txt"), body, 0o600)
		}
	}
}
