package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/transport"
	"golang.org/x/time/rate"
)

// Refusals by the handshake admission (see admission).
var (
	// ErrRateLimited refuses a handshake from a source address that opened
	// too many connections too fast (link.handshake_rate, handshake_burst).
	ErrRateLimited = errors.New("daemon: too many handshakes from this address")
	// ErrRateLimitedTotal refuses a handshake from a source address not
	// known as a peer's while all such sources together started too many
	// (link.handshake_rate_total).
	ErrRateLimitedTotal = errors.New("daemon: too many handshakes from unknown addresses")
)

// Handshake admission runs before the transport keeps any state for a new
// connection (transport.Options.Admit): TCP at accept, QUIC before quic-go
// creates the connection.
//
//   - Each source IP may start link.handshake_rate handshakes a second, in
//     bursts of link.handshake_burst.
//   - All sources together may start link.handshake_rate_total a second
//     (half of it for QUIC sources not yet proven by a Retry, half for the
//     others), except trusted ones: addresses a pinned peer linked from,
//     that this node dialed a peer at, or that a peer's configured address
//     names (maxTrusted of them are remembered).
//     Trusted sources may also use the handshake slots the transport keeps
//     in reserve, so a flood from many addresses cannot keep a known peer
//     out.
//   - QUIC source addresses may be spoofed until a Retry proves them.
//     Unproven and proven attempts therefore take from separate buckets, so
//     a spoofed flood cannot spend a real peer's tokens: once a source's (or
//     everyone's) unproven bucket is empty, its clients must prove their
//     address first (mustValidate). A real QUIC flooder from one address
//     thus gets twice the per-address rate of a TCP one.
//
// At most maxSources addresses are tracked; past that the idle ones, then
// arbitrary ones, are forgotten.
const (
	maxSources = 4096
	maxTrusted = 4096
)

// admission keeps the token buckets and the trusted addresses.
type admission struct {
	rate  rate.Limit // set before the first handshake, then read-only
	burst int        // likewise
	total rate.Limit // likewise: link.handshake_rate_total, which is also its burst

	mu      sync.Mutex
	now     func() time.Time         // guarded by mu; nil: time.Now (tests stop the clock)
	buckets map[bucketKey]*source    // guarded by mu
	all     [2]*rate.Limiter         // guarded by mu: untrusted sources together; [1] proven
	trusted map[netip.Addr]time.Time // guarded by mu: when each trusted address last linked
}

type bucketKey struct {
	ip     netip.Addr
	proven bool
}

type source struct {
	lim  *rate.Limiter
	seen time.Time
}

// admit decides on a new connection from remote. proven is false for a QUIC
// source address not validated by a Retry.
func (a *admission) admit(remote net.Addr, proven bool) (trusted bool, err error) {
	ip, ok := addrIP(remote)
	if !ok {
		return false, nil // mem: no addresses to tell apart
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clockLocked()
	_, trusted = a.trusted[ip]
	if !a.bucketLocked(bucketKey{ip, proven}, now).AllowN(now, 1) {
		return trusted, ErrRateLimited
	}
	if !trusted && !a.allLocked(proven).AllowN(now, 1) {
		return false, ErrRateLimitedTotal
	}
	return trusted, nil
}

// mustValidate tells whether a QUIC client from remote must prove its
// address before admit is asked: when an unproven attempt would be refused.
func (a *admission) mustValidate(remote net.Addr) bool {
	ip, ok := addrIP(remote)
	if !ok {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clockLocked()
	if a.bucketLocked(bucketKey{ip, false}, now).TokensAt(now) < 1 {
		return true
	}
	_, trusted := a.trusted[ip]
	return !trusted && a.allLocked(false).TokensAt(now) < 1
}

// trustAddress trusts the IP of a configured peer's address ("host:port"),
// when it is written as an IP: the peer will likely link from there too.
// Names are not resolved here; the address a dial reaches is trusted then.
func (a *admission) trustAddress(hostport string) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		a.trustIP(ip.Unmap())
	}
}

// trust remembers remote as an address a pinned peer linked from or at.
func (a *admission) trust(remote net.Addr) {
	if ip, ok := addrIP(remote); ok {
		a.trustIP(ip)
	}
}

func (a *admission) trustIP(ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.trusted == nil {
		a.trusted = map[netip.Addr]time.Time{}
	}
	if _, ok := a.trusted[ip]; !ok && len(a.trusted) >= maxTrusted {
		oldest, first := netip.Addr{}, true
		for k, t := range a.trusted {
			if first || t.Before(a.trusted[oldest]) {
				oldest, first = k, false
			}
		}
		delete(a.trusted, oldest)
	}
	a.trusted[ip] = a.clockLocked()
}

func (a *admission) clockLocked() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

func (a *admission) allLocked(proven bool) *rate.Limiter {
	i := 0
	if proven {
		i = 1
	}
	if a.all[i] == nil {
		// Half of the total each, so that both together keep to it, in
		// bursts of a tenth of a second's worth: a flood timed in bursts
		// is spread out, not let through at once.
		half := max(a.total/2, 1)
		a.all[i] = rate.NewLimiter(half, max(int(half/10), 1))
	}
	return a.all[i]
}

func (a *admission) bucketLocked(k bucketKey, now time.Time) *rate.Limiter {
	if a.buckets == nil {
		a.buckets = map[bucketKey]*source{}
	}
	s := a.buckets[k]
	if s == nil {
		if len(a.buckets) >= maxSources {
			a.evictLocked(now)
		}
		s = &source{lim: rate.NewLimiter(a.rate, a.burst)}
		a.buckets[k] = s
	}
	s.seen = now
	return s.lim
}

// evictLocked forgets sources idle for a minute and, if that is not
// enough, arbitrary ones until half the table is free.
func (a *admission) evictLocked(now time.Time) {
	for k, s := range a.buckets {
		if now.Sub(s.seen) > time.Minute {
			delete(a.buckets, k)
		}
	}
	for k := range a.buckets {
		if len(a.buckets) < maxSources/2 {
			break
		}
		delete(a.buckets, k)
	}
}

// addrIP is the IP address of a TCP or UDP endpoint.
func addrIP(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap(), true
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// logOnce runs a function at most once per logEvery, so that a flood makes
// one log line, not thousands.
type logOnce struct {
	mu   sync.Mutex
	last time.Time
}

const logEvery = 10 * time.Second

func (o *logOnce) Do(f func()) {
	o.mu.Lock()
	now := time.Now()
	ok := now.Sub(o.last) >= logEvery
	if ok {
		o.last = now
	}
	o.mu.Unlock()
	if ok {
		f()
	}
}

func (d *Daemon) onReject(e *auth.RejectError) {
	d.metrics.handshakeRejects.WithLabelValues(string(e.Reason)).Inc()
	// One line per reason and claimed name per interval: a flood of refused
	// handshakes is counted, not logged line by line. Claimed names come
	// from the peer: past rejectLogCap of them, one key per reason.
	key := string(e.Reason) + " " + e.Claimed.String()
	if d.rejectLogN.Load() >= rejectLogCap {
		if _, ok := d.rejectLogs.Load(key); !ok {
			key = string(e.Reason)
		}
	}
	v, loaded := d.rejectLogs.LoadOrStore(key, new(logOnce))
	if !loaded {
		d.rejectLogN.Add(1)
	}
	v.(*logOnce).Do(func() {
		d.log.Warn("peer rejected", "reason", string(e.Reason), "claimed", e.Claimed.String(), "key", e.Key, "detail", e.Detail,
			"note", "repeats within 10s are counted in wandist_handshake_rejections_total, not logged")
	})
}

// rejectLogCap bounds the rejection log limiters kept (see onReject).
const rejectLogCap = 256

// onStreamRefused counts a stream a peer opened beyond link.max_streams.
func (d *Daemon) onStreamRefused(remote net.Addr) {
	d.metrics.protocolErrors.WithLabelValues("stream_refused").Inc()
	d.streamLog.Do(func() {
		d.log.Warn("link streams beyond the limit refused (further ones are counted in wandist_protocol_errors_total{kind=\"stream_refused\"})",
			"remote", fmt.Sprint(remote), "max_streams", d.cfg.Link.MaxStreams)
	})
}

// onHandshakeError counts a refused or failed inbound handshake under its
// reason and logs it, one line per reason per interval.
func (d *Daemon) onHandshakeError(remote net.Addr, err error) {
	if _, ok := errors.AsType[*auth.RejectError](err); ok {
		return // counted and logged by onReject
	}
	reason, what := handshakeReason(err)
	d.metrics.handshakeRejects.WithLabelValues(reason).Inc()
	v, _ := d.handshakeLogs.LoadOrStore(reason, new(logOnce))
	v.(*logOnce).Do(func() {
		d.log.Warn(what, "reason", reason, "remote", fmt.Sprint(remote), "err", err,
			"note", "repeats within 10s are counted in wandist_handshake_rejections_total, not logged")
	})
}

// handshakeReason names the metric reason and the log message of a failed
// inbound handshake. The reasons are a fixed set.
func handshakeReason(err error) (reason, what string) {
	switch {
	case errors.Is(err, ErrRateLimited):
		return "rate_limited", "handshakes refused: a source address is over link.handshake_rate"
	case errors.Is(err, ErrRateLimitedTotal):
		return "rate_limited_total", "handshakes refused: unknown source addresses together are over link.handshake_rate_total"
	case errors.Is(err, transport.ErrTooManyFromSource):
		return "too_many_from_address", "handshakes refused: a source address has too many handshakes in progress"
	case errors.Is(err, transport.ErrTooManyHandshakes):
		return "too_many_handshakes", "handshakes refused: too many handshakes in progress"
	case errors.Is(err, transport.ErrHelloTimeout):
		return "hello_timeout", "handshakes refused: no ClientHello within link.hello_timeout"
	}
	return "tls", "handshake failed"
}
