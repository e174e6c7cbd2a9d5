//go:build linux

package chaos

import (
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/impair"
)

func TestPayloadRoundTripAndCorruption(t *testing.T) {
	p := Payload("rel", 1234, 256)
	if len(p) != 256 {
		t.Fatalf("payload of %d bytes, want 256", len(p))
	}
	tag, seq, err := ParsePayload(p)
	if err != nil || tag != "rel" || seq != 1234 {
		t.Fatalf("parsed %q %d %v", tag, seq, err)
	}
	for _, i := range []int{0, 5, 100, 250} {
		bad := append([]byte(nil), p...)
		bad[i] ^= 0x20
		if _, _, err := ParsePayload(bad); !errors.Is(err, ErrBadPayload) {
			t.Errorf("byte %d changed: error %v, want ErrBadPayload", i, err)
		}
	}
	if _, _, err := ParsePayload([]byte("short")); !errors.Is(err, ErrBadPayload) {
		t.Fatalf("a foreign payload parsed: %v", err)
	}
	if small := Payload("dur", 7, 1); len(small) < 10 {
		t.Fatalf("a tiny size still needs the header and CRC: %q", small)
	}
}

func TestCheckAccountsForEveryMessage(t *testing.T) {
	t0 := time.Unix(1000, 0)
	heal := t0.Add(10 * time.Second)
	rec := func(sec int, o Outcome) SendRecord {
		return SendRecord{At: t0.Add(time.Duration(sec) * time.Second), Outcome: o}
	}
	records := make([][]SendRecord, len(Flows))
	rel, ttl, amo := flowByTag("rel"), flowByTag("ttl"), flowByTag("amo")
	// reliable: 1 ok, 2 busy, 3 uncertain, 4 ok lost, 5 ok, 6 ok after the heal.
	records[rel] = []SendRecord{rec(1, Accepted), rec(2, Busy), rec(3, Uncertain), rec(4, Accepted), rec(5, Accepted), rec(11, Accepted)}
	records[ttl] = []SendRecord{rec(1, Accepted), rec(2, Accepted)}
	records[amo] = []SendRecord{rec(1, Accepted)}
	at := func(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	got := []Delivery{
		{Flow: rel, Seq: 1, At: at(1.1)},
		{Flow: rel, Seq: 5, At: at(12)},   // backlog delivered 2 s after the heal
		{Flow: rel, Seq: 3, At: at(12.5)}, // the uncertain one arrived, late: out of order
		{Flow: rel, Seq: 5, At: at(12.6)}, // duplicate
		{Flow: rel, Seq: 2, At: at(12.7)}, // refused but delivered: unexpected
		{Flow: rel, Seq: 6, At: at(13)},
		{Flow: rel, Seq: 99, At: at(13)}, // never sent
		{Flow: ttl, Seq: 1, At: at(1.2)},
		{Flow: -1, At: at(2)},
	}
	res := Check(records, got, heal)
	r := res[rel]
	want := FlowResult{Flow: "reliable", Attempted: 6, Sent: 4, Busy: 1, Uncertain: 1, Delivered: 6, Unconfirm: 1, Lost: 1,
		Duplicated: 1, OutOfOrder: 2, Unexpected: 2, SentAfterHeal: 1, DeliveredAfterHeal: 1,
		HealToFirst: 2 * time.Second, HealToDrained: 2 * time.Second, LostSeqs: []uint64{4}}
	if r.Flow != want.Flow || r.Attempted != want.Attempted || r.Sent != want.Sent || r.Busy != want.Busy || r.Uncertain != want.Uncertain ||
		r.Delivered != want.Delivered || r.Unconfirm != want.Unconfirm || r.Lost != want.Lost || r.Duplicated != want.Duplicated ||
		r.OutOfOrder != want.OutOfOrder || r.Unexpected != want.Unexpected || r.SentAfterHeal != want.SentAfterHeal ||
		r.DeliveredAfterHeal != want.DeliveredAfterHeal || r.HealToFirst != want.HealToFirst || r.HealToDrained != want.HealToDrained ||
		len(r.LostSeqs) != 1 || r.LostSeqs[0] != 4 {
		t.Fatalf("reliable:\n got %+v\nwant %+v", r, want)
	}
	if tr := res[ttl]; tr.Expired != 1 || tr.Lost != 0 || tr.Delivered != 1 {
		t.Fatalf("ttl flow: %+v, want 1 expired, none lost", tr)
	}
	if ar := res[amo]; ar.Lost != 1 || ar.HealToFirst != -1 || ar.HealToDrained != 0 {
		t.Fatalf("at-most-once flow: %+v", ar)
	}
	if nh := Check(records, got, time.Time{}); nh[rel].HealToFirst != -1 || nh[rel].HealToDrained != -1 || nh[rel].SentAfterHeal != 0 {
		t.Fatalf("without a heal the heal times must be unset: %+v", nh[rel])
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want Outcome
	}{
		{nil, Accepted},
		{&client.Error{Kind: client.ErrBusy, Message: "full"}, Busy},
		{client.ErrUnavailable, Uncertain},
		{client.ErrTimeout, Uncertain},
		{&client.Error{Kind: client.ErrNoMembers}, Refused},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestRenderedConfigsParse(t *testing.T) {
	dir := t.TempDir()
	key := "ed25519:" + strings.Repeat("A", 43) + "="
	for _, cfg := range []NodeConfig{
		{Cluster: "east", Node: "east-1", IP: "10.213.1.2", QUICPort: 7101, TCPPort: 7102, AdminPort: 7103, Socket: filepath.Join(dir, "e.sock"),
			Spool: true, SpoolMaxBytes: 1 << 20, BufferBytes: 4 << 20,
			Peers: []PeerConfig{{Cluster: "west", Node: "west-1", Address: "10.213.2.2:7202", Transport: "tcp", PublicKey: key}}},
		{Cluster: "west", Node: "west-1", IP: "10.213.2.2", QUICPort: 7201, TCPPort: 7202, AdminPort: 7203, Socket: filepath.Join(dir, "w.sock"),
			BufferBytes: 4 << 20, Peers: []PeerConfig{{Cluster: "east", Node: "east-1", PublicKey: key}}},
	} {
		c, err := configs.Parse([]byte(cfg.Render()), cfg.Node+".yaml")
		if err != nil {
			t.Fatalf("%s: %v\n%s", cfg.Node, err, cfg.Render())
		}
		if c.Cluster != cfg.Cluster || len(c.Peers) != 1 || c.Buffer.MaxBytes != cfg.BufferBytes {
			t.Fatalf("%s parsed as %+v", cfg.Node, c)
		}
	}
}

func TestNetemArgs(t *testing.T) {
	got := strings.Join(netemArgs(NetFault{Delay: 100 * time.Millisecond, Jitter: 20 * time.Millisecond, Loss: 0.05, Duplicate: 0.01, RateBits: 1e6}, true), " ")
	want := "delay 100000us 20000us loss 5.000% duplicate 1.000% rate 1000000bit"
	if got != want {
		t.Fatalf("netem args %q, want %q", got, want)
	}
	if got := strings.Join(netemArgs(NetFault{Loss: 0.05}, false), " "); got != "" {
		t.Fatalf("loss left to nftables still in netem args: %q", got)
	}
}

func TestCountersAddAndSub(t *testing.T) {
	a := Counters{NFT: map[string]uint64{"e2w": 10, "drop_e2w": 1}, Fwd: impair.Stats{Packets: 5}, TBF: map[string]TCStats{"ww": {Bytes: 100}}}
	b := Counters{NFT: map[string]uint64{"e2w": 30, "drop_e2w": 4}, Fwd: impair.Stats{Packets: 9}, TBF: map[string]TCStats{"ww": {Bytes: 50}}}
	d := b.Sub(a)
	if d.NFT["e2w"] != 20 || d.NFT["drop_e2w"] != 3 || d.Fwd.Packets != 4 {
		t.Fatalf("delta %+v", d)
	}
	s := d.Add(d)
	if s.NFT["e2w"] != 40 || s.Fwd.Packets != 8 || s.TBF["ww"].Bytes != 100 {
		t.Fatalf("sum %+v", s)
	}
}

func TestReportAndPlot(t *testing.T) {
	t0 := time.Now()
	res := &Result{Scenario: "flapping", Transport: "quic", Fault: "2 s up, 1 s down", Via: []string{"nftables"}, Effect: "nftables dropped 10",
		PeakKB: map[string]int64{"east": 30 << 10, "west": 20 << 10}, BoundKB: 5 << 10, LimitKB: 53 << 10, Began: t0,
		Flows:      Check(make([][]SendRecord, len(Flows)), nil, time.Time{}),
		Windows:    []Window{{t0.Add(2 * time.Second), t0.Add(3 * time.Second)}},
		Samples:    []Sample{{T: t0, State: "up"}, {T: t0.Add(2500 * time.Millisecond), State: "down", Queued: 300}, {T: t0.Add(4 * time.Second), State: "up"}},
		Deliveries: []Delivery{{Flow: 0, Seq: 1, At: t0.Add(time.Second)}, {Flow: 0, Seq: 2, At: t0.Add(3500 * time.Millisecond)}},
		Failures:   []string{"reliable: 1 accepted and lost | seq 4"},
	}
	svg := Plot(res)
	var doc struct {
		XMLName xml.Name
		Rects   []struct{} `xml:"rect"`
	}
	if err := xml.Unmarshal([]byte(svg), &doc); err != nil || doc.XMLName.Local != "svg" {
		t.Fatalf("the plot is not well-formed SVG: %v", err)
	}
	if len(doc.Rects) < 4 { // background, two panels, shaded windows
		t.Fatalf("plot has %d rects, want the panels and the shaded fault window", len(doc.Rects))
	}
	dir := t.TempDir()
	rep := Report{Profile: "full", Machine: "test machine", Results: []*Result{res}, Took: time.Minute}
	path := filepath.Join(dir, "chaos.md")
	if err := rep.WriteMarkdown(path); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0 of 1 scenario runs passed", "test machine", "| flapping | quic |", `seq 4`, `\|`, "chaos-flapping-quic.svg"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "chaos-flapping-quic.svg")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Table(), "FAIL reliable: 1 accepted and lost") {
		t.Fatalf("table lacks the failure:\n%s", rep.Table())
	}
}
