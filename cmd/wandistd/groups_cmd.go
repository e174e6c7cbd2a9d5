package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/daemon"
)

func cmdGroups(ctx context.Context, args []string, stdout, stderr io.Writer, _ io.Reader) error {
	fs := newFlags("groups", "[-c FILE] [--group G [--local] [--watch]] [--json]", stdout)
	ep := socketFlags(fs)
	// Without --group, every group comes from the admin listener, found
	// as status finds it (-c, --admin, $WANDIST_ADMIN...).
	adm := &endpoint{admin: true, cfgPath: ep.cfgPath,
		addr:  fs.String("admin", "", "without --group: the daemon's admin `address`, host:port (default: $"+envAdmin+", admin.listen in -c FILE, else "+defaultAdmin+")"),
		token: fs.String("admin-token", "", "without --group: the admin `token` (default: $"+envAdminToken+", admin.token in -c FILE)")}
	group := fs.String("group", "", "`group` to list (without it: every group, from the admin listener)")
	local := fs.Bool("local", false, "only this node's members")
	watch := fs.Bool("watch", false, "then print every join and leave until interrupted")
	asJSON := fs.Bool("json", false, "print JSON: the members (or groups) as one array; with --watch, one object per event per line (NDJSON)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *group == "" {
		if *local || *watch {
			return usageErr(fs, "--local and --watch need --group")
		}
		addr, token, err := adm.resolveAdmin()
		if err != nil {
			return err
		}
		return listGroups(ctx, addr, token, *asJSON, stdout)
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

// listGroups prints every group the daemon knows (GET /v1/groups on its
// admin listener): members, how many are reachable, and per node.
func listGroups(ctx context.Context, admin, token string, asJSON bool, stdout io.Writer) error {
	var gs []daemon.GroupSummary
	if err := adminGetJSON(ctx, admin, token, "/v1/groups", &gs); err != nil {
		return err
	}
	if asJSON {
		return writeJSONIndent(stdout, gs)
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
