package client

import (
	"context"
	"fmt"
	"time"
)

// WaitOption sets an option of WaitMembers: WithCluster, WithMinMembers.
type WaitOption struct {
	cluster string
	min     int
	setMin  bool
}

// WithCluster counts only the members in cluster.
func WithCluster(cluster string) WaitOption { return WaitOption{cluster: cluster} }

// WithMinMembers waits for at least n members (default 1).
func WithMinMembers(n int) WaitOption { return WaitOption{min: n, setMin: true} }

// WaitMembers waits until the local daemon knows at least one member of
// group (WithMinMembers: n), of any cluster or (WithCluster) of one, and
// returns the members that count, as Members lists them. A Join is
// asynchronous across nodes: a send from another node right after a Join
// there may find no member (ErrNoMembers) until that node's membership
// reached this daemon; WaitMembers is the wait for it. A member counts
// once the daemon knows of it, reachable or not.
//
// It watches the group (Watch) and lists its members again after each
// change, so it waits without polling; ctx bounds the wait (ErrTimeout at
// its deadline).
func (c *Client) WaitMembers(ctx context.Context, group string, opts ...WaitOption) ([]Member, error) {
	cluster, want := "", 1
	for _, o := range opts {
		if o.cluster != "" {
			cluster = o.cluster
		}
		if o.setMin {
			want = o.min
		}
	}
	if want < 1 {
		return nil, &Error{Kind: ErrBadRequest, Message: fmt.Sprintf("WaitMembers: WithMinMembers(%d): want at least 1", want)}
	}
	w, err := c.Watch(ctx, group)
	if err != nil {
		return nil, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = w.Close(cctx) // the watch ends with the client anyway
	}()
	for {
		// Listed after the watch started: a change from here on wakes us.
		ms, err := c.Members(ctx, group)
		if err != nil {
			return nil, err
		}
		if got := membersOf(ms, cluster); len(got) >= want {
			return got, nil
		}
		if _, err := w.Next(ctx); err != nil {
			return nil, err
		}
		for w.pending() { // events that came together: one list for all
			if _, err := w.Next(ctx); err != nil {
				return nil, err
			}
		}
	}
}

// membersOf returns the members of ms in cluster ("": all).
func membersOf(ms []Member, cluster string) []Member {
	if cluster == "" {
		return ms
	}
	out := ms[:0]
	for _, m := range ms {
		if m.Addr.Cluster == cluster {
			out = append(out, m)
		}
	}
	return out
}
