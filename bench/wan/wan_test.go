package wan

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wandist/wandist/bench/latency"
	"github.com/wandist/wandist/bench/report"
	"github.com/wandist/wandist/bench/workload"
)

func TestChooseRate(t *testing.T) {
	for _, c := range []struct {
		ceiling float64
		want    int64
	}{{3e9, 1e9}, {1.5e9, 500e6}, {900e6, 200e6}, {314e6, 100e6}, {150e6, 100e6}, {0, 100e6}} {
		if got := ChooseRate(c.ceiling); got != c.want {
			t.Errorf("ChooseRate(%.0f) = %d, want %d", c.ceiling, got, c.want)
		}
	}
}

func TestWindowFor(t *testing.T) {
	if got := WindowFor(100e6); got != 8<<20 {
		t.Errorf("WindowFor(100 Mbit/s) = %d, want the 8 MiB floor", got)
	}
	// 1 Gbit/s × 50 ms = 6.25 MB; 8 of them.
	if got := WindowFor(1e9); got != 50_000_000 {
		t.Errorf("WindowFor(1 Gbit/s) = %d, want 50000000", got)
	}
}

// healRun makes deliveries of messages due every 10 ms from t0 for 3 s:
// 25 ms one way before the cut at 1 s; the ones due during the cut (to 2 s)
// arrive from heal+100 ms, 2 ms apart; later ones queue behind them until
// the queue is empty.
func healRun(dropOne bool) (due []time.Time, got []arrival, cut, heal time.Time) {
	t0 := time.Unix(1000, 0)
	cut, heal = t0.Add(time.Second), t0.Add(2*time.Second)
	next := heal.Add(100 * time.Millisecond) // when the link is free again
	for i := range 300 {
		d := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		due = append(due, d)
		if d.Before(cut) {
			got = append(got, arrival{d, d.Add(25 * time.Millisecond)})
			continue
		}
		if dropOne && i == 150 {
			continue
		}
		at := d.Add(25 * time.Millisecond)
		if next.After(at) {
			at = next
		}
		next = at.Add(2 * time.Millisecond)
		got = append(got, arrival{d, at})
	}
	return due, got, cut, heal
}

func TestAnalyzeHeal(t *testing.T) {
	due, got, cut, heal := healRun(false)
	r := analyzeHeal(due, got, 1000, cut, heal)
	if r.Base != 25*time.Millisecond {
		t.Errorf("base latency %v, want 25ms", r.Base)
	}
	if r.Backlog != 100*1000 {
		t.Errorf("backlog %d bytes, want 100 messages of 1000 B", r.Backlog)
	}
	if r.First != 100*time.Millisecond {
		t.Errorf("first delivery %v after the heal, want 100ms", r.First)
	}
	// The 100 cut messages go out 2 ms apart from heal+100 ms: the last at heal+298 ms.
	if r.Backlogged != 298*time.Millisecond {
		t.Errorf("backlog delivered %v after the heal, want 298ms", r.Backlogged)
	}
	// Messages due after the heal queue until the queue empties: the
	// delivery lag shrinks 8 ms per message from 300 ms; the first within
	// 25+50 ms of its due time arrives at heal + 372 ms.
	if r.CaughtUp < r.Backlogged || r.CaughtUp > 400*time.Millisecond {
		t.Errorf("caught up %v after the heal, want between the backlog's %v and 400ms", r.CaughtUp, r.Backlogged)
	}
	// 100 kB over 800 kbit/s (1 Mbit/s − 0.2 offered): 1 s.
	r.Offered = 200e3
	if got := r.IdealDrain(1e6); got != time.Second {
		t.Errorf("ideal drain %v, want 1s", got)
	}
	if got := r.IdealBacklog(1e6); got != 800*time.Millisecond {
		t.Errorf("ideal backlog %v, want 800ms", got)
	}

	due, got, cut, heal = healRun(true)
	r = analyzeHeal(due, got, 1000, cut, heal)
	if r.Backlogged != -1 || r.CaughtUp != -1 {
		t.Errorf("a message of the backlog never came, yet backlog %v caught up %v (want -1)", r.Backlogged, r.CaughtUp)
	}
}

// result is a run where the wandists meet every target but two: QUIC's
// goodput at 0.1 % loss, and request-reply at 1 % loss is behind NATS.
func result() *Result {
	cfg := DefaultConfig(false)
	r := &Result{Rate: 100e6, Config: cfg}
	bulk := func(sys, st string, size int, mbit float64) {
		r.Rows = append(r.Rows, Row{System: sys, Setting: st, Workload: WBulk, Size: size, Bulk: &BulkResult{Goodput: mbit * 1e6}})
	}
	rr := func(sys, st, wl string, p99 time.Duration) {
		l := workload.LatencyResult{Sent: 10, OK: 10, Latency: latency.Summary{P99: p99}}
		x := Row{System: sys, Setting: st, Workload: wl, RR: &l}
		if wl == WHP {
			x.RR, x.HP = nil, &HPResult{RR: l}
		}
		r.Rows = append(r.Rows, x)
	}
	for _, st := range Settings {
		for _, size := range cfg.BulkSizes {
			bulk("wandist-tcp", st.Name, size, 95)
			bulk("wandist-quic", st.Name, size, map[bool]float64{true: 85, false: 95}[st == Settings[1]])
			bulk("nats", st.Name, size, 80)
			bulk("raw-tcp-bbr", st.Name, size, 90)
		}
		for _, s := range []string{"wandist-tcp", "wandist-quic"} {
			rr(s, st.Name, WRR, 60*time.Millisecond)
		}
		rr("nats", st.Name, WRR, map[bool]time.Duration{true: 50 * time.Millisecond, false: 70 * time.Millisecond}[st == Settings[2]])
	}
	for _, s := range []string{"wandist-tcp", "wandist-quic"} {
		rr(s, Settings[0].Name, WHP, 65*time.Millisecond)
		r.Rows = append(r.Rows, Row{System: s, Setting: Settings[0].Name, Workload: WHeal,
			Heal: &HealResult{Offered: 25e6, Backlog: 12_500_000, CaughtUp: 1300 * time.Millisecond}}) // ideal 1333 ms
	}
	rr("nats", Settings[0].Name, WHP, 900*time.Millisecond)
	r.Rows = append(r.Rows, Row{System: "nats", Setting: Settings[0].Name, Workload: WHeal, Heal: &HealResult{Offered: 25e6, Backlog: 12_500_000, CaughtUp: -1}})
	return r
}

func TestJudge(t *testing.T) {
	ts := Judge(result())
	want := []bool{true, false, true, true, true, false}
	if len(ts) != len(want) {
		t.Fatalf("%d targets, want %d: %+v", len(ts), len(want), ts)
	}
	for i, tg := range ts {
		if !tg.Judged || tg.Met != want[i] {
			t.Errorf("target %q: judged %v met %v, want judged, met %v (%s)", tg.Name, tg.Judged, tg.Met, want[i], tg.Figures)
		}
	}
	if !strings.Contains(ts[1].Figures, "wandist-quic 85.0 Mbit/s = 85 %") {
		t.Errorf("0.1 %% goodput figures %q lack QUIC's 85 %%", ts[1].Figures)
	}
	if !strings.Contains(ts[5].Figures, "behind on 2 of ") || !strings.Contains(ts[5].Figures, "request-reply p99 at 1 %") {
		t.Errorf("ahead-of-NATS figures %q: want the two request-reply rows at 1 %% loss behind", ts[5].Figures)
	}
}

func TestJudgeMissingFigures(t *testing.T) {
	r := &Result{Rate: 100e6, Config: DefaultConfig(true)}
	for _, tg := range Judge(r) {
		if tg.Judged || tg.Met {
			t.Errorf("target %q judged (%v) or met (%v) without figures", tg.Name, tg.Judged, tg.Met)
		}
	}
}

func TestWriteMarkdownKeepsTheRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	loop := "# Benchmarks\n\nloopback tables\n"
	if err := os.WriteFile(path, []byte(loop), 0o644); err != nil {
		t.Fatal(err)
	}
	r := result()
	for range 2 { // the second write replaces the section, not appends
		if err := WriteMarkdown(path, r); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if !strings.HasPrefix(doc, loop) {
		t.Errorf("the loopback part was not kept:\n%s", doc)
	}
	if n := strings.Count(doc, "## WAN"); n != 1 {
		t.Errorf("%d WAN headings, want 1", n)
	}
	sec := report.Section(doc, report.WANSection)
	if !strings.Contains(sec, "| wandist ahead of NATS on every row | not met |") {
		t.Errorf("the section lacks the judged targets:\n%s", sec)
	}
}

// memPipe is an in-memory Piper: each send is delivered by a goroutine.
type memPipe struct {
	mu       sync.Mutex // guards inflight, maxIn
	inflight int
	maxIn    int
}

type memSender struct {
	p  *memPipe
	ch chan []byte
	wg sync.WaitGroup
}

func (m *memPipe) OpenPipe(ctx context.Context, onMsg func([]byte)) (workload.Sender, error) {
	s := &memSender{p: m, ch: make(chan []byte, 1024)}
	s.wg.Go(func() {
		for b := range s.ch {
			m.mu.Lock()
			m.inflight -= len(b)
			m.mu.Unlock()
			onMsg(b)
		}
	})
	return s, nil
}

func (s *memSender) Send(b []byte) error {
	s.p.mu.Lock()
	s.p.inflight += len(b)
	s.p.maxIn = max(s.p.maxIn, s.p.inflight)
	s.p.mu.Unlock()
	s.ch <- append([]byte(nil), b...)
	return nil
}
func (s *memSender) Sync(context.Context) error { return nil }
func (s *memSender) Close() error {
	close(s.ch)
	s.wg.Wait()
	return nil
}

func TestBulkCountsAtTheReceiver(t *testing.T) {
	p := &memPipe{}
	r, err := Bulk(context.Background(), p, BulkOptions{Size: 1024, Duration: 300 * time.Millisecond, Warm: 100 * time.Millisecond, Window: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent == 0 || r.Counts.Delivered != r.Sent || !r.Counts.Clean() || r.Counts.OutOfOrder != 0 {
		t.Errorf("sent %d, counts %+v: want every message delivered once, in order", r.Sent, r.Counts)
	}
	if r.Goodput <= 0 || r.Measured <= 0 {
		t.Errorf("goodput %.0f over %v, want positive", r.Goodput, r.Measured)
	}
	if p.maxIn > 64<<10+1024 {
		t.Errorf("%d bytes in flight at most, want the window (64 KiB) + one message", p.maxIn)
	}
}

func TestBulkRunsDuringAfterWarmUp(t *testing.T) {
	var ran time.Duration
	start := time.Now()
	r, err := Bulk(context.Background(), &memPipe{}, BulkOptions{Size: 256, Duration: 50 * time.Millisecond, Warm: 20 * time.Millisecond, Window: 1 << 20,
		During: func(context.Context) { ran = time.Since(start) }})
	if err != nil {
		t.Fatal(err)
	}
	if ran < 20*time.Millisecond {
		t.Errorf("During ran %v after the start, before the warm-up's end", ran)
	}
	if r.Counts.Delivered != r.Sent {
		t.Errorf("delivered %d of %d", r.Counts.Delivered, r.Sent)
	}
}
