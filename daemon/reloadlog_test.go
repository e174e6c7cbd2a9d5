package daemon

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// A reload that changes log.level sets the running logger's level: debug
// lines appear after a reload to debug, and stop after one back to info.
func TestReloadAppliesLogLevel(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	var out syncBuffer
	lvl := new(slog.LevelVar) // info
	n.opts.Logger = slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: lvl}))
	n.opts.LogLevel = lvl
	n.start()
	reloadLog := func(level, format string) error {
		cfg := *n.d.Config()
		cfg.Log.Level, cfg.Log.Format = level, format
		return n.d.Reload(&cfg)
	}
	n.d.log.Debug("probe-1")
	if err := reloadLog("debug", "text"); err != nil {
		t.Fatalf("reload to log.level debug: %v", err)
	}
	if lvl.Level() != slog.LevelDebug || n.d.Config().Log.Level != "debug" {
		t.Fatalf("after the reload: level %v, config %q; want debug", lvl.Level(), n.d.Config().Log.Level)
	}
	n.d.log.Debug("probe-2")
	if err := reloadLog("info", "text"); err != nil {
		t.Fatalf("reload back to info: %v", err)
	}
	n.d.log.Debug("probe-3")
	logs := out.String()
	if strings.Contains(logs, "probe-1") || !strings.Contains(logs, "probe-2") || strings.Contains(logs, "probe-3") {
		t.Fatalf("debug lines: want only probe-2 (logged while the level was debug); the log:\n%s", logs)
	}
	if !strings.Contains(logs, "log level changed by a reload") {
		t.Errorf("the level change was not logged:\n%s", logs)
	}
}

// A reload that changes log.format, or log.level on a daemon given no
// LevelVar, is refused naming the key, and the running config stays.
func TestReloadRefusesLogChangesItCannotApply(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.opts.LogLevel = nil
	n.start()
	for _, c := range []struct{ level, format, key string }{
		{"info", "json", "log.format"},
		{"debug", "text", "log.level"},
	} {
		cfg := *n.d.Config()
		cfg.Log.Level, cfg.Log.Format = c.level, c.format
		err := n.d.Reload(&cfg)
		if !errors.Is(err, ErrNeedsRestart) || !strings.Contains(err.Error(), c.key+" changed") {
			t.Errorf("reload with log %s/%s: %v; want ErrNeedsRestart naming %s", c.level, c.format, err, c.key)
		}
		if got := n.d.Config().Log; got.Level != "info" || got.Format != "text" {
			t.Errorf("a refused reload left the log config at %+v", got)
		}
	}
}
