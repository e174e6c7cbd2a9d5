package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/daemon"
)

func cmdGroups(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("groups", "[--admin ADDR] | --socket PATH --group G [--local] [--watch]", stderr)
	socket := fs.String("socket", "", "the daemon's local socket `path` (default $WANDIST_SOCKET, else /run/wandist/wandist.sock)")
	group := fs.String("group", "", "`group` to list (without it: every group, from the admin listener)")
	local := fs.Bool("local", false, "only this node's members")
	watch := fs.Bool("watch", false, "then print every join and leave until interrupted")
	admin := fs.String("admin", "127.0.0.1:7103", "the daemon's admin `address` (host:port), to list every group")
	token := fs.String("token", os.Getenv("WANDIST_ADMIN_TOKEN"), "admin `token`, when the daemon requires one (default $WANDIST_ADMIN_TOKEN)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *group == "" {
		if *local || *watch {
			return usageErr(fs, "--local and --watch need --group")
		}
		return listGroups(ctx, *admin, *token, stdout)
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

// listGroups prints every group the daemon knows (GET /v1/groups on its
// admin listener): members, how many are reachable, and per node.
func listGroups(ctx context.Context, admin, token string, stdout io.Writer) error {
	var gs []daemon.GroupSummary
	if err := adminGetJSON(ctx, admin, token, "/v1/groups", &gs); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tMEMBERS\tREACHABLE\tNODES")
	for _, g := range gs {
		nodes := make([]string, 0, len(g.Nodes))
		for _, n := range g.Nodes {
			s := fmt.Sprintf("%s/%s (%d)", n.Cluster, n.Node, n.Members)
			if !n.Reachable {
				s = fmt.Sprintf("%s/%s (%d, unreachable)", n.Cluster, n.Node, n.Members)
			}
			nodes = append(nodes, s)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", g.Group, g.Members, g.ReachableMembers, strings.Join(nodes, ", "))
	}
	return tw.Flush()
}

// adminGetJSON GETs path from the admin listener at admin and decodes its
// JSON answer into v.
func adminGetJSON(ctx context.Context, admin, token, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+path, nil)
	if err != nil {
		return fmt.Errorf("--admin %q: %w", admin, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the daemon's admin listener at %s: %w", admin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin listener at %s answered %s for %s", admin, resp.Status, path)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("bad answer from %s%s: %w", admin, path, err)
	}
	return nil
}
