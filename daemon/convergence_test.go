package daemon

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
)

// TestMembershipConvergesAfterChaos runs random joins, leaves, node
// restarts, partitions and heals over three nodes in three clusters, then
// heals everything and checks that every node's view of every group equals
// the truth (what the clients' mailboxes joined). Seeds are fixed so a
// failure reproduces; WANDIST_SEED picks another.
func TestMembershipConvergesAfterChaos(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { convergenceRun(t, seed) })
	}
}

type chaosClient struct {
	n      *node
	c      *client.Client
	mb     *client.Mailbox
	joined map[string]int
}

func convergenceRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	names := []string{"east", "north", "west"}
	ns := mesh(t, "mem", names, func(n *node) {
		n.opts.DigestInterval = 100 * time.Millisecond
		n.cfg.Groups.UnreachableGrace = time.Hour // partitions keep members listed
	})
	groups := []string{"a", "b", "c", "d"}
	var clients []*chaosClient
	for _, n := range ns {
		for range 2 {
			c, err := client.Connect(ctxT(t, 5*time.Second), client.Options{Socket: n.cfg.Local.Socket, ReconnectMax: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			mb, err := c.NewMailbox(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, &chaosClient{n: n, c: c, mb: mb, joined: map[string]int{}})
		}
	}
	blocked := map[[2]int]bool{}
	setPartition := func(i, j int, on bool) {
		ns[i].block(ns[j].cfg.Cluster, ns[j].cfg.Node, on)
		ns[j].block(ns[i].cfg.Cluster, ns[i].cfg.Node, on)
		blocked[[2]int{i, j}] = on
	}
	ops := map[string]int{}
	// retry runs a call until it is not refused for a reconnect in progress
	// (the client backs off between tries, as an application would).
	retry := func(f func() error) error {
		for i := 0; ; i++ {
			err := f()
			if !errors.Is(err, client.ErrUnavailable) || i == 100 {
				return err
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for step := 0; step < 150; step++ {
		switch r := rng.IntN(100); {
		case r < 45: // join
			cl := clients[rng.IntN(len(clients))]
			g := groups[rng.IntN(len(groups))]
			if retry(func() error { return cl.mb.Join(ctxT(t, 5*time.Second), g) }) == nil {
				cl.joined[g]++
				ops["join"]++
			}
		case r < 80: // leave
			cl := clients[rng.IntN(len(clients))]
			for _, g := range groups {
				if cl.joined[g] > 0 {
					if retry(func() error { return cl.mb.Leave(ctxT(t, 5*time.Second), g) }) == nil {
						cl.joined[g]--
						ops["leave"]++
					}
					break
				}
			}
		case r < 90: // partition or heal a pair
			i, j := rng.IntN(3), rng.IntN(3)
			if i == j {
				continue
			}
			if i > j {
				i, j = j, i
			}
			setPartition(i, j, !blocked[[2]int{i, j}])
			ops["partition/heal"]++
		default: // restart a node: its clients reconnect and re-join
			n := ns[rng.IntN(3)]
			n.d.Close()
			n.start()
			for k, b := range blocked { // a restarted daemon forgets its blocks
				if b && (ns[k[0]] == n || ns[k[1]] == n) {
					setPartition(k[0], k[1], true)
				}
			}
			ops["restart"]++
		}
	}
	for k, b := range blocked {
		if b {
			setPartition(k[0], k[1], false)
		}
	}
	// Wait for the truth everywhere.
	truth := func() map[string][]string {
		out := map[string][]string{}
		for _, cl := range clients {
			a := cl.mb.Addr()
			for g, n := range cl.joined {
				if n > 0 {
					out[g] = append(out[g], fmt.Sprintf("%s/%s/%d×%d", a.Cluster, a.Node, a.Mailbox, n))
				}
			}
		}
		for g := range out {
			sort.Strings(out[g])
		}
		return out
	}
	view := func(n *node) map[string][]string {
		out := map[string][]string{}
		for _, g := range groups {
			for _, m := range n.d.Groups().Members(g) {
				s := fmt.Sprintf("%s/%s/%d×%d", m.Cluster, m.Node, m.Mailbox, m.Count)
				if !m.Reachable {
					s += "(unreachable)"
				}
				out[g] = append(out[g], s)
			}
			sort.Strings(out[g])
			if len(out[g]) == 0 {
				delete(out, g)
			}
		}
		return out
	}
	deadline := time.After(20 * time.Second)
	for _, n := range ns {
		for {
			ch := n.d.Groups().Changed()
			want, got := fmt.Sprint(truth()), fmt.Sprint(view(n))
			if want == got {
				break
			}
			select {
			case <-ch:
			case <-time.After(200 * time.Millisecond): // clients may still be re-joining: re-read the truth
			case <-deadline:
				t.Fatalf("seed %d: %s never converged\n got  %s\n want %s\n ops %v", seed, n.cfg.Cluster, got, want, ops)
			}
		}
	}
	t.Logf("seed %d: converged after %v", seed, ops)
}
