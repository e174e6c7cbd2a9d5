package gossip

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// logBridge is memberlist's log output: each line goes to slog at its
// level, and the lines that say a packet or stream did not open with the
// cluster's key are counted as RefusedKey refusals. memberlist has no
// other hook for them: it decrypts inside its packet and stream handlers
// and only logs the failure. Warnings about refusals are logged once per
// reason per interval; memberlist's other warnings at most one a second
// (with a burst), since a hostile sender can cause them at will.
type logBridge struct {
	log      *slog.Logger
	interval time.Duration
	onRefuse func(reason string)
	warns    *rate.Limiter

	mu    sync.Mutex
	times map[string]*rate.Sometimes // key (a reason) -> its once-per-interval log; guarded by mu
}

func newLogBridge(log *slog.Logger, interval time.Duration, onRefuse func(string)) *logBridge {
	return &logBridge{log: log, interval: interval, onRefuse: onRefuse,
		warns: rate.NewLimiter(1, 20), times: map[string]*rate.Sometimes{}}
}

// keyFailures are the parts of memberlist's log lines (security.go, net.go)
// that say a message was not sealed with a key of the keyring.
var keyFailures = []string{
	"Decrypt packet failed",     // UDP: ingestPacket
	"could decrypt the message", // TCP: "no installed keys could decrypt the message"
	"remote state is not encrypted",
	"unsupported encryption version",
	"payload is too small to decrypt",
	"cannot decrypt empty payload",
	"encryption is not configured", // the peer sent encrypted state to a node without a key
}

// Write takes one line of memberlist's log (log.Logger writes a line a call).
func (b *logBridge) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	level, msg := slog.LevelInfo, line
	if i := strings.Index(line, "] "); strings.HasPrefix(line, "[") && i > 0 {
		level, msg = parseLevel(line[1:i]), line[i+2:]
	}
	if level >= slog.LevelWarn {
		for _, k := range keyFailures {
			if strings.Contains(msg, k) {
				b.refusal(RefusedKey, "gossip: refused a message not sealed with the cluster's key", "detail", msg)
				return len(p), nil
			}
		}
		if !b.warns.Allow() {
			return len(p), nil
		}
	}
	b.log.Log(context.Background(), level, msg)
	return len(p), nil
}

func parseLevel(s string) slog.Level {
	switch s {
	case "DEBUG", "TRACE":
		return slog.LevelDebug
	case "WARN":
		return slog.LevelWarn
	case "ERR", "ERROR":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// refusal counts one refusal and logs it at most once per reason per interval.
func (b *logBridge) refusal(reason, msg string, args ...any) {
	b.onRefuse(reason)
	b.once(reason, msg, append(args, "reason", reason)...)
}

// once logs a warning at most once per key per interval.
func (b *logBridge) once(key, msg string, args ...any) {
	b.mu.Lock()
	s := b.times[key]
	if s == nil {
		s = &rate.Sometimes{Interval: b.interval}
		b.times[key] = s
	}
	b.mu.Unlock()
	s.Do(func() { b.log.Warn(msg, append(args, "note", "logged once per "+b.interval.String())...) })
}
