package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/wandist/wandist/auth"
	"golang.org/x/time/rate"
)

// ErrRateLimited refuses a handshake from a source address that opened too
// many connections too fast.
var ErrRateLimited = errors.New("daemon: too many handshakes from this address")

// Handshake admission: each source IP may start link.handshake_rate
// handshakes a second, in bursts of link.handshake_burst. Established links
// are not affected: they do not handshake again. At most maxSources
// addresses are tracked; past that the oldest entries are forgotten.
const maxSources = 4096

// admission keeps a token bucket per source IP.
type admission struct {
	rate    rate.Limit // set before the first handshake, then read-only
	burst   int        // likewise
	mu      sync.Mutex
	now     func() time.Time   // guarded by mu; nil: time.Now (tests stop the clock)
	buckets map[string]*source // guarded by mu
}

type source struct {
	lim  *rate.Limiter
	seen time.Time
}

// allow reports whether a new handshake from addr may start now.
func (a *admission) allow(addr net.Addr) bool {
	host := addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if a.now != nil {
		now = a.now()
	}
	if a.buckets == nil {
		a.buckets = map[string]*source{}
	}
	s := a.buckets[host]
	if s == nil {
		if len(a.buckets) >= maxSources {
			a.evictLocked(now)
		}
		s = &source{lim: rate.NewLimiter(a.rate, a.burst)}
		a.buckets[host] = s
	}
	s.seen = now
	return s.lim.AllowN(now, 1)
}

// evictLocked forgets sources idle for a minute and, if that is not
// enough, arbitrary ones until half the table is free.
func (a *admission) evictLocked(now time.Time) {
	for h, s := range a.buckets {
		if now.Sub(s.seen) > time.Minute {
			delete(a.buckets, h)
		}
	}
	for h := range a.buckets {
		if len(a.buckets) < maxSources/2 {
			break
		}
		delete(a.buckets, h)
	}
}

// admitting wraps a server TLS config so that a source over its rate is
// refused before any cryptographic work; refusals are counted and logged.
func (d *Daemon) admitting(tc *tls.Config) *tls.Config {
	tc = tc.Clone()
	next := tc.GetConfigForClient
	tc.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		if hi.Conn != nil && !d.admit.allow(hi.Conn.RemoteAddr()) {
			d.metrics.handshakeRejects.WithLabelValues("rate_limited").Inc()
			d.rateLog.Do(func() {
				d.log.Warn("handshakes refused: a source address is over its rate", "remote", hi.Conn.RemoteAddr().String(), "rate_per_s", float64(d.admit.rate))
			})
			return nil, ErrRateLimited
		}
		if next != nil {
			return next(hi)
		}
		return nil, nil
	}
	return tc
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

func (d *Daemon) onHandshakeError(remote net.Addr, err error) {
	var re *auth.RejectError
	if errors.As(err, &re) || errors.Is(err, ErrRateLimited) {
		return // counted and logged already
	}
	d.metrics.handshakeRejects.WithLabelValues("tls").Inc()
	// A flood of bad handshakes makes one line per interval, not one each.
	d.handshakeLog.Do(func() {
		d.log.Warn("handshake failed (further failures are counted in wandist_handshake_rejections_total{reason=\"tls\"})",
			"remote", fmt.Sprint(remote), "err", err)
	})
}
