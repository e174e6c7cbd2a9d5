package main

import (
	"bufio"
	"context"

	"github.com/wandist/wandist/client"
)

// strategies are the names of the routing strategies, as --strategy takes them.
var strategies = map[string]client.Strategy{
	"closest": client.Closest, "random": client.Random, "round-robin": client.RoundRobin,
	"least-backlog": client.LeastBacklog, "key": client.ByKey, "broadcast": client.Broadcast,
}

const strategyUsage = "routing `strategy` of a group send: closest (default), random, round-robin, least-backlog, broadcast, or key (with --key)"

// routeFlags checks --key and --strategy and returns their send options.
func routeFlags(fs *flagSet, key, strategy string) ([]client.SendOption, error) {
	if strategy == "" {
		if key != "" {
			return []client.SendOption{client.WithKey(key)}, nil
		}
		return nil, nil
	}
	s, ok := strategies[strategy]
	switch {
	case !ok:
		return nil, usageErr(fs, "--strategy %q: want closest, random, round-robin, least-backlog, broadcast or key", strategy)
	case s == client.ByKey && key == "":
		return nil, usageErr(fs, "--strategy key needs --key K")
	case s != client.ByKey && key != "":
		return nil, usageErr(fs, "--key routes by key; it cannot go with --strategy %s", strategy)
	case key != "":
		return []client.SendOption{client.WithKey(key)}, nil
	}
	return []client.SendOption{client.WithStrategy(s)}, nil
}

// partitionFlags checks --partitions and --own, and returns the partitions owned.
func partitionFlags(fs *flagSet, n int, own string) ([]int, error) {
	switch {
	case n < 0:
		return nil, usageErr(fs, "--partitions must be >= 0, got %d", n)
	case n == 0 && own != "":
		return nil, usageErr(fs, "--own needs --partitions")
	case n == 0:
		return nil, nil
	case own == "":
		return nil, usageErr(fs, "--partitions needs --own LIST (--own 0-%d for all)", n-1)
	}
	parts, err := parseList(own, n)
	if err != nil {
		return nil, usageErr(fs, "--own: %v", err)
	}
	return parts, nil
}

// joinGroup joins mb to group, partitioned into n partitions owning parts when n > 0.
func joinGroup(ctx context.Context, mb *client.Mailbox, group string, n int, parts []int) error {
	if n > 0 {
		return mb.JoinPartitions(ctx, group, n, parts...)
	}
	return mb.Join(ctx, group)
}

// subPrinter prints received messages, one a line, flushed at once.
type subPrinter struct {
	w      *bufio.Writer
	sender bool // prefix the payload with the sender's address
	json   bool // one JSON object per message
}

// subJSON is a message as `sub --json` prints it.
type subJSON struct {
	From  string `json:"from"`
	Group string `json:"group,omitempty"`
	jsonPayload
}

func (p *subPrinter) print(m *client.Message) error {
	switch {
	case p.json:
		if err := writeJSON(p.w, subJSON{From: m.From.String(), Group: m.Group, jsonPayload: newJSONPayload(m.Payload)}); err != nil {
			return err
		}
	case p.sender:
		p.w.WriteString(m.From.String())
		p.w.WriteByte(' ')
		fallthrough
	default:
		p.w.Write(m.Payload)
		p.w.WriteByte('\n')
	}
	return p.w.Flush()
}
