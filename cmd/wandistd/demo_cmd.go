package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/wandist/wandist/demo"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("demo", "[--messages N] [--outage D] [-v]", stdout)
	n := fs.Int("messages", 5000, "messages to publish")
	outage := fs.Duration("outage", 0, "how long the link is cut (default 3s)")
	verbose := fs.Bool("v", false, "show the daemons' logs")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n <= 0 {
		return usageErr(fs, "--messages must be positive, got %d", *n)
	}
	o := demo.Options{Messages: *n, Outage: *outage}
	if *verbose {
		o.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	rep, err := demo.Run(ctx, stdout, o)
	if err != nil {
		return err
	}
	if rep.Lost > 0 || rep.Duplicated > 0 {
		return fmt.Errorf("delivery was not exactly once: %d lost, %d duplicated", rep.Lost, rep.Duplicated)
	}
	return nil
}
