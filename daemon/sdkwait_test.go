package daemon

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
)

// A group send from east right after a Join on west may find no member
// (the Join is asynchronous across nodes); client.WaitMembers, as seen
// from the west cluster, waits until east knows the member, and the send
// that follows finds it, every time.
func TestWaitMembersAcrossClusters(t *testing.T) {
	east, west := pair(t, "mem")
	ce, cw := connect(t, east), connect(t, west)
	ctx := ctxT(t, 60*time.Second)
	for i := range 5 {
		group := fmt.Sprintf("wait-%d", i)
		mb, err := cw.NewMailbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := mb.Join(ctx, group); err != nil {
			t.Fatal(err)
		}
		ms, err := ce.WaitMembers(ctx, group, client.WithCluster("west"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].Addr != mb.Addr() {
			t.Fatalf("try %d: WaitMembers = %+v, want the member %v", i, ms, mb.Addr())
		}
		if err := ce.SendGroup(ctx, group, []byte("hi")); err != nil {
			t.Fatalf("try %d: send right after WaitMembers: %v", i, err)
		}
		if m, err := mb.Receive(ctx); err != nil || string(m.Payload) != "hi" {
			t.Fatalf("try %d: received %v, %v", i, m, err)
		}
	}
}

// WithMinMembers waits for the n-th member; WithCluster leaves out the
// members of other clusters; a deadline ends the wait with ErrTimeout.
func TestWaitMembersCountsAndClusters(t *testing.T) {
	east, west := pair(t, "mem")
	ce, cw := connect(t, east), connect(t, west)
	ctx := ctxT(t, 60*time.Second)
	local, err := ce.NewMailbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := local.Join(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	// The east member is there at once; none of west's yet.
	if ms, err := ce.WaitMembers(ctx, "g"); err != nil || len(ms) != 1 || ms[0].Addr != local.Addr() {
		t.Fatalf("WaitMembers(g) = %+v, %v", ms, err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = ce.WaitMembers(short, "g", client.WithCluster("west"))
	cancel()
	if !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("WaitMembers for a west member that is not there: %v, want ErrTimeout", err)
	}
	if _, err := ce.WaitMembers(ctx, "g", client.WithMinMembers(0)); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("WithMinMembers(0): %v, want ErrBadRequest", err)
	}
	// Two west members: the wait for two returns only once both are known.
	done := make(chan []client.Member, 1)
	fail := make(chan error, 1)
	go func() {
		ms, err := ce.WaitMembers(ctx, "g", client.WithCluster("west"), client.WithMinMembers(2))
		if err != nil {
			fail <- err
			return
		}
		done <- ms
	}()
	var joined []client.Addr
	for range 2 {
		mb, err := cw.NewMailbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := mb.Join(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		joined = append(joined, mb.Addr())
		if len(joined) == 1 {
			// One west member known to east: the wait for two goes on.
			if _, err := ce.WaitMembers(ctx, "g", client.WithCluster("west")); err != nil {
				t.Fatal(err)
			}
			select {
			case ms := <-done:
				t.Fatalf("WaitMembers for 2 returned with one west member joined: %+v", ms)
			case err := <-fail:
				t.Fatal(err)
			default:
			}
		}
	}
	select {
	case ms := <-done:
		if len(ms) != 2 {
			t.Fatalf("WaitMembers for 2 = %+v", ms)
		}
		for _, m := range ms {
			if m.Addr != joined[0] && m.Addr != joined[1] {
				t.Fatalf("WaitMembers for 2 west members returned %v (joined %v)", m.Addr, joined)
			}
		}
	case err := <-fail:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("WaitMembers for 2 did not return after the second join")
	}
}
