package daemon

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/groups"
	"github.com/wandist/wandist/internal/wire"
	"github.com/wandist/wandist/transport"
)

// What a pinned peer can do to membership once it is authenticated: each
// test drives a rogue peer's link by hand (rogueLink) against a real
// daemon, east.

// rogueLink is a pinned peer's link driven by hand: the test writes frames
// on its control stream; a reader answers pings and counts the Resyncs the
// daemon sends.
type rogueLink struct {
	id      string // cluster/node
	conn    transport.Conn
	mu      sync.Mutex // serializes writes on ctl
	ctl     transport.Stream
	ver     uint64 // the rogue's membership version (its deltas follow it)
	resyncs atomic.Int64
}

// rogueIncarnation is the incarnation handshakeAs announces.
const rogueIncarnation = 7

// linkRogue pins a node of cluster on east and links it by hand.
func linkRogue(t *testing.T, east *node, cluster string) *rogueLink {
	t.Helper()
	rogue := newNode(t, "mem", cluster, cluster+"-1")
	if err := addPeerForTest(east.d, peerOf(rogue, "mem", "", "accept")); err != nil {
		t.Fatal(err)
	}
	conn, ctl, r := rawPeer(t, "mem", east, rogue)
	rl := &rogueLink{id: cluster + "/" + cluster + "-1", conn: conn, ctl: ctl}
	go func() {
		for {
			typ, body, err := r.ReadFrame()
			if err != nil {
				return
			}
			switch typ {
			case wire.TypePing:
				var p wire.Ping
				if p.DecodeBody(body) == nil {
					rl.write(wire.AppendFrame(nil, &wire.Pong{Echo: p.Echo}))
				}
			case wire.TypeResync:
				rl.resyncs.Add(1)
			}
		}
	}()
	waitLink(t, east.d, cluster, cluster+"-1")
	return rl
}

func (rl *rogueLink) write(b []byte) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.ctl.Write(b)
}

// send writes ms on the control stream, in writes of up to 256 KiB.
func (rl *rogueLink) send(ms ...wire.Message) {
	var b []byte
	for _, m := range ms {
		b = wire.AppendFrame(b, m)
		if len(b) >= 256<<10 {
			rl.write(b)
			b = b[:0]
		}
	}
	if len(b) > 0 {
		rl.write(b)
	}
}

// snapshot sends a whole snapshot of members in one frame.
func (rl *rogueLink) snapshot(members ...wire.Member) {
	rl.send(&wire.MembersSnapshot{Incarnation: rogueIncarnation, Version: rl.ver, Members: members})
}

// join returns the next delta: mailbox joins group with a claim.
func (rl *rogueLink) join(group string, mailbox, n uint64, partitions ...uint64) *wire.MembersDelta {
	rl.ver++
	return &wire.MembersDelta{Incarnation: rogueIncarnation, Version: rl.ver, Op: wire.OpJoin, Group: group, Mailbox: mailbox,
		PartitionCount: n, Partitions: partitions}
}

// refused reads wandist_membership_refused_total for the rogue and reason.
func refused(n *node, rl *rogueLink, reason string) float64 {
	cluster, node, _ := cut(rl.id)
	return testutil.ToFloat64(n.d.metrics.membershipRefused.WithLabelValues(cluster, node, reason))
}

func cut(id string) (string, string, bool) {
	for i := range id {
		if id[i] == '/' {
			return id[:i], id[i+1:], true
		}
	}
	return id, "", false
}

// waitRefused waits until the rogue's refusals for reason reach want.
func waitRefused(t *testing.T, n *node, rl *rogueLink, reason string, want float64) {
	t.Helper()
	waitUntil(t, 60*time.Second, func() bool { return refused(n, rl, reason) >= want }, func() string {
		return fmt.Sprintf("refusals %q: %v, want %v", reason, refused(n, rl, reason), want)
	})
	if got := refused(n, rl, reason); got != want {
		t.Fatalf("refusals %q: %v, want %v", reason, got, want)
	}
}

// membersOf counts the members east holds of the rogue, over every group.
func membersOf(n *node, cluster string) (members, groupsN int) {
	for g := range n.d.Groups().Groups() {
		seen := false
		for _, m := range n.d.Groups().Members(g) {
			if m.Cluster == cluster {
				members++
				seen = true
			}
		}
		if seen {
			groupsN++
		}
	}
	return members, groupsN
}

func allPartitions(n int) []uint64 {
	ps := make([]uint64, n)
	for i := range ps {
		ps[i] = uint64(i)
	}
	return ps
}

// TestPeerMembershipBudget: a pinned peer that joins more members, groups
// and partitions than its budget is refused past it, counted by reason, and
// the heap stays bounded (it was 8 bytes per 1-byte partition, unbounded).
func TestPeerMembershipBudget(t *testing.T) {
	east := newNode(t, "mem", "east", "east-1")
	east.cfg.Groups.MaxMembersPerPeer = 100
	east.cfg.Groups.MaxGroupsPerPeer = 10
	east.cfg.Groups.MaxPartitionsPerPeer = 1000
	// Not what is tested here (TestPeerMembershipRate): at the default
	// rate the 36 MB flood below takes about 110 s to be read, and the
	// waits for its refusals raced that.
	east.cfg.Groups.MembershipRate = configs.MaxMembershipRate
	east.start()
	rl := linkRogue(t, east, "north")
	rl.snapshot()
	before := heapNow()
	// Partitions: 600 + 400 fit; 600 more, and a flood of claims of all
	// 65,536 partitions (180 KB each on the wire), do not.
	all := allPartitions(65536)
	rl.send(rl.join("kv", 1, 65536, all[:600]...), rl.join("kv", 2, 65536, all[:600]...), rl.join("kv", 3, 65536, all[600:1000]...))
	const floods = 200
	for i := range floods {
		rl.send(rl.join("kv", uint64(100+i), 65536, all...))
	}
	// Groups: 9 more fit (kv is one).
	var ds []wire.Message
	for i := range 20 {
		ds = append(ds, rl.join("g"+strconv.Itoa(i), uint64(10+i), 0))
	}
	// Members: 100 - 11 more fit.
	const members = 50_000
	for i := range members {
		ds = append(ds, rl.join("g0", uint64(1000+i), 0))
	}
	rl.send(ds...)
	waitRefused(t, east, rl, "members", members-89)
	waitRefused(t, east, rl, "groups", 11)
	waitRefused(t, east, rl, "partitions", 1+floods)
	if m, g := membersOf(east, "north"); m != 100 || g != 10 {
		t.Fatalf("east holds %d members in %d groups of the rogue, want 100 in 10", m, g)
	}
	// The link is still up: the rogue's joins were refused, not fatal.
	if err := east.d.WaitLink(ctxT(t, time.Second), "north", "north-1", true); err != nil {
		t.Fatal(err)
	}
	// What east keeps of the rogue stays after its link (whose transport
	// buffers hold up to a stream window) is gone.
	rl.conn.Close()
	if err := east.d.WaitLink(ctxT(t, 10*time.Second), "north", "north-1", false); err != nil {
		t.Fatal(err)
	}
	if m, _ := membersOf(east, "north"); m != 100 {
		t.Fatalf("east holds %d members of the rogue after its link went, want 100", m)
	}
	grown := float64(heapNow()) - float64(before)
	t.Logf("heap grew by %.1f MB after %d MB of joins", grown/1e6, floods*180/1000)
	if grown > 4<<20 {
		t.Fatalf("heap grew by %.1f MB: not bounded by the budget", grown/1e6)
	}
}

// TestPeerSnapshotBudget: a snapshot over max_snapshot_bytes, or never
// finished (More set on every frame), is discarded: the previous view of the
// peer stays, the memory it held is freed, and it is counted.
func TestPeerSnapshotBudget(t *testing.T) {
	east := newNode(t, "mem", "east", "east-1")
	east.cfg.Groups.MaxSnapshotBytes = 2 << 20
	east.cfg.Groups.SnapshotTimeout = 3 * time.Second
	east.cfg.Groups.MembershipRate = configs.MaxMembershipRate // not what is tested here (TestPeerMembershipRate)
	east.start()
	rl := linkRogue(t, east, "north")
	rl.snapshot(wire.Member{Group: "keep", Mailbox: 1, Count: 1})
	if err := east.d.WaitMembers(ctxT(t, 5*time.Second), "keep", 1); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 200) // few members per byte: cheap to take, even under -race
	frame := func(group string, from, n int, more bool) *wire.MembersSnapshot {
		ms := make([]wire.Member, n)
		for i := range ms {
			ms[i] = wire.Member{Group: fmt.Sprintf("%s-%s-%d", group, pad, (from+i)%100), Mailbox: 1<<40 + uint64(from+i), Count: 1}
		}
		return &wire.MembersSnapshot{Incarnation: rogueIncarnation, Members: ms, More: more}
	}
	gauge := func() float64 { return testutil.ToFloat64(east.d.metrics.snapshotBytes) }
	held := func(prefix string) int {
		n := 0
		for g, c := range east.d.Groups().Groups() {
			if strings.HasPrefix(g, prefix) {
				n += c
			}
		}
		return n
	}
	// 20 MB in frames of about 512 KB, More on all but the last.
	for i := range 40 {
		rl.send(frame("flood", i*2400, 2400, i < 39))
	}
	waitRefused(t, east, rl, refusedSnapshotBytes, 1)
	waitUntil(t, 30*time.Second, func() bool { return gauge() == 0 && held("flood") == 0 && held("keep") == 1 }, func() string {
		return fmt.Sprintf("after the discard: %v bytes in progress, %d flood members, %d keep members", gauge(), held("flood"), held("keep"))
	})
	// A snapshot that never ends: discarded at the timeout, and its last
	// frame, when it comes, is dropped with it.
	rl.send(frame("late", 0, 2400, true))
	waitUntil(t, 10*time.Second, func() bool { return gauge() > 0 }, func() string { return "the snapshot is not in progress" })
	waitRefused(t, east, rl, refusedSnapshotTimeout, 1)
	if g := gauge(); g != 0 {
		t.Fatalf("%v bytes still in progress after the timeout", g)
	}
	rl.send(frame("late", 2400, 1, false))
	rl.snapshot(wire.Member{Group: "fresh", Mailbox: 2, Count: 1}) // the next snapshot is taken
	if err := east.d.WaitMembers(ctxT(t, 5*time.Second), "fresh", 1); err != nil {
		t.Fatal(err)
	}
	if n := held("late"); n != 0 {
		t.Fatalf("%d members of the timed-out snapshot taken", n)
	}
	if refused(east, rl, refusedSnapshotBytes) != 1 || refused(east, rl, refusedSnapshotTimeout) != 1 {
		t.Fatal("a discard counted twice")
	}
}

// TestPeerCannotJoinGroupsNotImported: a pinned peer's members of a group
// this node does not import from its cluster (by default: one not exported
// to it) are refused, so a Random or Broadcast send never reaches them.
func TestPeerCannotJoinGroupsNotImported(t *testing.T) {
	east := newNode(t, "mem", "east", "east-1")
	east.cfg.Exports = []configs.Export{{Groups: []string{"pub-*"}, To: []string{"*"}}}
	east.start()
	c := connect(t, east)
	mb, err := c.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Join(ctxT(t, 5*time.Second), "priv"); err != nil {
		t.Fatal(err)
	}
	rl := linkRogue(t, east, "north")
	rl.snapshot(wire.Member{Group: "priv", Mailbox: 1, Count: 1}, wire.Member{Group: "pub-a", Mailbox: 2, Count: 1})
	rl.send(rl.join("priv", 3, 0))
	if err := east.d.WaitMembers(ctxT(t, 5*time.Second), "pub-a", 1); err != nil {
		t.Fatal(err) // an exported group is imported
	}
	waitRefused(t, east, rl, "not_imported", 2)
	if ms := east.d.Groups().Members("priv"); len(ms) != 1 || ms[0].Cluster != "east" {
		t.Fatalf("members of priv: %+v", ms)
	}
	for i := range 10 {
		if err := c.SendGroup(ctxT(t, 5*time.Second), "priv", []byte(strconv.Itoa(i)), client.WithStrategy(client.Random)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SendGroup(ctxT(t, 5*time.Second), "priv", []byte("10"), client.WithStrategy(client.Broadcast)); err != nil {
		t.Fatal(err)
	}
	receiveSeq(t, mb, 11, 5*time.Second)
	if s := east.d.peer("north", "north-1").queue.Stats(); s.Enqueued != 0 {
		t.Fatalf("%d messages for priv went to the rogue", s.Enqueued)
	}
	// A reload that imports priv from north asks north for a fresh
	// snapshot, taken under the new rules.
	cfg := *east.d.current.Load()
	cfg.Imports = []configs.Import{{Groups: []string{"priv", "pub-*"}, From: []string{"north"}}}
	if err := east.d.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, func() bool { return rl.resyncs.Load() > 0 }, func() string { return "no Resync after the import rules changed" })
	rl.snapshot(wire.Member{Group: "priv", Mailbox: 1, Count: 1})
	if err := east.d.WaitMembers(ctxT(t, 5*time.Second), "priv", 2); err != nil {
		t.Fatal(err)
	}
}

// TestPeerCannotSetPartitionCount: a pinned peer's claim of 1 partition of
// kv neither makes a local join of 64 partitions fail nor takes the keys:
// this node's members fix the count, and claims of another are refused.
func TestPeerCannotSetPartitionCount(t *testing.T) {
	east := newNode(t, "mem", "east", "east-1")
	east.start()
	// "abc" sorts before "east": it would be the first member key routing
	// looks at.
	rl := linkRogue(t, east, "abc")
	rl.snapshot(wire.Member{Group: "kv", Mailbox: 1, Count: 1, PartitionCount: 1, Partitions: []uint64{0}})
	if err := east.d.WaitMembers(ctxT(t, 5*time.Second), "kv", 1); err != nil {
		t.Fatal(err)
	}
	c := connect(t, east)
	mb, err := c.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	low := make([]int, 32) // partitions 0-31: keys of 32-63 have no owner
	for i := range low {
		low[i] = i
	}
	if err := mb.JoinPartitions(ctxT(t, 5*time.Second), "kv", 64, low...); err != nil {
		t.Fatalf("a local join of 64 partitions with the peer claiming 1: %v", err)
	}
	rl.send(rl.join("kv", 2, 1, 0))
	waitRefused(t, east, rl, "partition_count", 2)
	if ms := east.d.Groups().Members("kv"); len(ms) != 1 || ms[0].Cluster != "east" {
		t.Fatalf("members of kv: %+v", ms)
	}
	sent := 0
	for i := 0; sent < 20; i++ {
		key := "k" + strconv.Itoa(i)
		err := c.SendGroup(ctxT(t, 5*time.Second), "kv", []byte(strconv.Itoa(sent)), client.WithKey(key))
		if groups.Partition(key, 64) >= 32 {
			if err == nil {
				t.Fatalf("key %s of an unowned partition was sent", key)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	receiveSeq(t, mb, 20, 5*time.Second)
	if s := east.d.peer("abc", "abc-1").queue.Stats(); s.Enqueued != 0 {
		t.Fatalf("%d keyed messages went to the rogue", s.Enqueued)
	}
}

// TestPeerFloodLogsBounded: a pinned peer flooding offending frames (bad
// acks, digests that do not match, deltas of unknown operations or of groups
// not imported, messages to groups not exported) gets every one counted and
// at most one log line per reason per 10 s.
func TestPeerFloodLogsBounded(t *testing.T) {
	east := newNode(t, "mem", "east", "east-1")
	east.cfg.Exports = []configs.Export{{Groups: []string{"pub-*"}, To: []string{"*"}}}
	logs := east.capturing()
	east.start()
	start := time.Now()
	rl := linkRogue(t, east, "north")
	rl.snapshot()
	const n = 2000
	var ms []wire.Message
	for range n {
		rl.ver++
		ms = append(ms, &wire.Ack{Lane: wire.LaneNormal, Incarnation: east.d.incarnation, Seq: 1 << 40},
			&wire.Digest{Incarnation: rogueIncarnation, Version: 1 << 30, Hash: 1},
			&wire.MembersDelta{Incarnation: rogueIncarnation, Version: rl.ver, Op: 9, Group: "g"},
			rl.join("secret", 1, 0))
	}
	rl.send(ms...)
	data, err := rl.conn.OpenStream(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b := wire.AppendFrame(nil, &wire.StreamInit{Kind: wire.StreamData, Lane: wire.LaneNormal})
	for range n {
		b = wire.AppendFrame(b, &wire.Data{Flags: wire.FlagAtMostOnce, To: 1, Group: "secret", Payload: []byte("x")})
	}
	if _, err := data.Write(b); err != nil {
		t.Fatal(err)
	}
	protocol := func(kind string) float64 {
		return testutil.ToFloat64(east.d.metrics.protocolErrors.WithLabelValues(kind))
	}
	waitRefused(t, east, rl, refusedUnknownOp, n)
	waitRefused(t, east, rl, "not_imported", n)
	waitUntil(t, 60*time.Second, func() bool {
		return protocol("bad_ack") == n && protocol("digest_mismatch") == n &&
			testutil.ToFloat64(east.d.metrics.dropped.WithLabelValues("not_exported")) == n
	}, func() string {
		return fmt.Sprintf("bad acks %v, digest mismatches %v, not exported %v; want %d each", protocol("bad_ack"), protocol("digest_mismatch"),
			testutil.ToFloat64(east.d.metrics.dropped.WithLabelValues("not_exported")), n)
	})
	maxLines := 1 + int(time.Since(start)/logEvery)
	lines := map[string]int{}
	logs.mu.Lock()
	for _, r := range *logs.recs {
		if r.level >= slog.LevelWarn && r.attrs["peer"].String() == "north/north-1" {
			lines[r.attrs["reason"].String()]++
		}
	}
	logs.mu.Unlock()
	for _, reason := range []string{"bad_ack", "digest_mismatch", refusedUnknownOp, "not_imported", "not_exported"} {
		if got := lines[reason]; got < 1 || got > maxLines {
			t.Errorf("%d warnings for %s, want 1 to %d", got, reason, maxLines)
		}
	}
	t.Logf("warnings by reason: %v", lines)
}

// TestPeerMembershipRate: a pinned peer that floods membership frames is
// read no faster than groups.membership_rate past its burst: the flood
// costs this node a bounded share of a core, and the frames that waited
// are counted. An upper bound, which a slow machine only makes easier to
// keep: what was taken by any moment is within the burst and the rate
// over the time since the flood began.
func TestPeerMembershipRate(t *testing.T) {
	east := newNode(t, "mem", "east", "east-1")
	east.cfg.Groups.MembershipRate = configs.MinMembershipRate
	east.start()
	rl := linkRogue(t, east, "north")
	rl.snapshot()
	pad := strings.Repeat("x", 200)
	var ds []wire.Message
	size, joinSize := 0, 0 // joinSize: a join's body, which is what the rate counts
	for i := 0; size < membershipBurst+1<<20; i++ {
		d := rl.join(fmt.Sprintf("g-%s-%d", pad, i%100), uint64(1+i), 0)
		joinSize = len(d.AppendBody(nil))
		size += joinSize
		ds = append(ds, d)
	}
	start := time.Now()
	go rl.send(ds...) // blocks once the link's windows are full
	throttled := func() float64 {
		return testutil.ToFloat64(east.d.metrics.membershipThrottled.WithLabelValues("north", "north-1"))
	}
	waitUntil(t, 30*time.Second, func() bool { return throttled() > 0 }, func() string {
		m, _ := membersOf(east, "north")
		return fmt.Sprintf("no membership frame counted as throttled; %d of %d joins taken", m, len(ds))
	})
	m, _ := membersOf(east, "north")
	elapsed := time.Since(start)
	allowed := (membershipBurst + float64(east.cfg.Groups.MembershipRate)*elapsed.Seconds()) / float64(joinSize)
	// With the defence off all of them are taken at once: burst + 1 MiB,
	// 12 % over the bound; 1 % of slack covers what the measuring misses.
	if float64(m) > 1.01*allowed+1 {
		t.Fatalf("%d joins taken %v after the flood began: more than groups.membership_rate allows (%.0f)", m, elapsed, allowed)
	}
	rl.conn.Close()
}
