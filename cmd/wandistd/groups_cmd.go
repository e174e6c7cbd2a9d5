package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/wandist/wandist/client"
)

func cmdGroups(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("groups", "[-c FILE] --group G [--local] [--watch] [--json]", stdout)
	ep := socketFlags(fs)
	group := fs.String("group", "", "`group` to list")
	local := fs.Bool("local", false, "only this node's members")
	watch := fs.Bool("watch", false, "then print every join and leave until interrupted")
	asJSON := fs.Bool("json", false, "print JSON: the members as one array; with --watch, one object per event per line (NDJSON)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *group == "" {
		return usageErr(fs, "--group is required")
	}
	c, err := ep.connect(ctx, "wandistd groups")
	if err != nil {
		return err
	}
	defer c.Close()
	if *watch {
		w, err := c.Watch(ctx, *group)
		if err != nil {
			return err
		}
		for {
			e, err := w.Next(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			op := map[client.EventOp]string{client.Joined: "join", client.Left: "leave", client.Reset: "reset"}[e.Op]
			if *asJSON {
				if err := writeJSON(stdout, map[string]string{"op": op, "member": e.Member.String()}); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(stdout, "%s\t%s\n", op, e.Member)
		}
	}
	list := c.Members
	if *local {
		list = c.LocalMembers
	}
	ms, err := list(ctx, *group)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSONIndent(stdout, membersJSON(ms))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tJOINS\tREACHABLE\tPARTITIONS")
	for _, m := range ms {
		parts := "-"
		if len(m.Partitions) > 0 {
			parts = fmt.Sprint(m.Partitions)
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%s\n", m.Addr, m.Count, m.Reachable, parts)
	}
	return tw.Flush()
}

// memberJSON is a member as `groups --json` prints it.
type memberJSON struct {
	Addr       string `json:"addr"`
	Joins      int    `json:"joins"`
	Reachable  bool   `json:"reachable"`
	Partitions []int  `json:"partitions"`
}

func membersJSON(ms []client.Member) []memberJSON {
	out := make([]memberJSON, 0, len(ms))
	for _, m := range ms {
		parts := m.Partitions
		if parts == nil {
			parts = []int{}
		}
		out = append(out, memberJSON{Addr: m.Addr.String(), Joins: m.Count, Reachable: m.Reachable, Partitions: parts})
	}
	return out
}
