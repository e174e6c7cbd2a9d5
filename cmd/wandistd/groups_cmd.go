package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/wandist/wandist/client"
)

func cmdGroups(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("groups", "--socket PATH --group G [--local] [--watch]", stderr)
	socket := fs.String("socket", "", "the daemon's local socket `path` (default $WANDIST_SOCKET, else /run/wandist/wandist.sock)")
	group := fs.String("group", "", "`group` to list")
	local := fs.Bool("local", false, "only this node's members")
	watch := fs.Bool("watch", false, "then print every join and leave until interrupted")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *group == "" {
		return usageErr(fs, "--group is required")
	}
	c, err := client.Connect(ctx, client.Options{Socket: *socket, Name: "wandistd groups"})
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
