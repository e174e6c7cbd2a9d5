package daemon

import (
	"fmt"
	"log/slog"

	"github.com/wandist/wandist/configs"
)

// checkLogChange refuses a reload whose log section this daemon cannot
// apply: a new log.format (the handler is made once, at start), or a new
// log.level when the daemon was given no Options.LogLevel to set.
func (d *Daemon) checkLogChange(next configs.Log) error {
	if next.Format != d.cfg.Log.Format {
		return fmt.Errorf("%w: log.format changed (%s to %s)", ErrNeedsRestart, d.cfg.Log.Format, next.Format)
	}
	cur := d.current.Load().Log.Level
	if next.Level != cur && d.logLevel == nil {
		return fmt.Errorf("%w: log.level changed (%s to %s), and this daemon's logger has no level a reload can set (daemon.Options.LogLevel)",
			ErrNeedsRestart, cur, next.Level)
	}
	if _, err := parseLevel(next.Level); err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	return nil
}

// applyLogLevel sets the logger's level to next's, after checkLogChange
// allowed it.
func (d *Daemon) applyLogLevel(prev, next configs.Log) {
	if next.Level == prev.Level || d.logLevel == nil {
		return
	}
	lvl, _ := parseLevel(next.Level)
	// Said while the more verbose of the two levels is in force.
	say := func() { d.log.Info("log level changed by a reload", "from", prev.Level, "to", next.Level) }
	if lvl > d.logLevel.Level() {
		say()
		d.logLevel.Set(lvl)
		return
	}
	d.logLevel.Set(lvl)
	say()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}
