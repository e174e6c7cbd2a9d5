package daemon

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
)

// The moving averages and the time to drain, by value, for known counts at
// known times: rateAlpha (0.3) of each new second's rate, 0.7 of the old.
func TestBacklogRatesByValue(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var r backlogRates
	steps := []struct {
		at             time.Duration
		enqd, deqd     uint64
		queued         int
		enq, deq, left float64
	}{
		{0, 0, 0, 0, 0, 0, 0},                           // the baseline: no rate yet, nothing queued
		{time.Second, 100, 40, 60, 30, 12, math.Inf(1)}, // 0.3*100, 0.3*40: filling, never drains
		{2 * time.Second, 200, 140, 60, 51, 38.4, math.Inf(1)},
		{2 * time.Second, 900, 900, 60, 51, 38.4, math.Inf(1)}, // the clock stood still: ignored
		{time.Second, 900, 900, 60, 51, 38.4, math.Inf(1)},     // it stepped back: ignored
		{3 * time.Second, 200, 340, 100, 35.7, 86.88, 100 / (86.88 - 35.7)},
		{5 * time.Second, 200, 440, 40, 24.99, 75.816, 40 / (75.816 - 24.99)}, // 2 s: 0.3*100/2 + 0.7*86.88
		{6 * time.Second, 200, 440, 0, 17.493, 53.0712, 0},                    // empty: drained
	}
	for i, s := range steps {
		r.sample(t0.Add(s.at), s.enqd, s.deqd)
		enq, deq, left := r.get(s.queued)
		if !near(enq, s.enq) || !near(deq, s.deq) || !near(left, s.left) {
			t.Fatalf("step %d (t0+%v, enqueued %d, dequeued %d, %d queued): enq %v deq %v drain %v; want %v %v %v",
				i, s.at, s.enqd, s.deqd, s.queued, enq, deq, left, s.enq, s.deq, s.left)
		}
	}
	// Dequeuing at no more than 0.01/s above the enqueue rate is "never".
	r = backlogRates{enq: 10, deq: 10.005}
	if _, _, left := r.get(5); !math.IsInf(left, 1) {
		t.Fatalf("drain at +0.005/s: %v, want +Inf", left)
	}
}

func near(a, b float64) bool {
	if math.IsInf(b, 0) {
		return a == b
	}
	return math.Abs(a-b) < 1e-9
}

// frozenClock is a daemon clock that moves only when the test says.
type frozenClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *frozenClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// The rates and the time to drain reach Status and /metrics by value. The
// daemon's clock stands still, so its janitor's samples (at that time) are
// ignored after the first, and the test feeds the sampler known counts at
// later times, as the janitor would once a second.
func TestStatusRatesAndDrainByValue(t *testing.T) {
	clock := &frozenClock{t: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
	east := newNode(t, "mem", "east", "east-1")
	east.opts.Now = clock.now
	west := newNode(t, "mem", "west", "west-1") // never started: its link stays down
	east.cfg.Peers = []configs.Peer{peerOf(west, "mem", west.cfg.Listen.QUIC, "connect")}
	east.start()
	p := east.d.peer("west", "west-1")
	deadline := time.Now().Add(10 * time.Second)
	for { // the janitor's first sample: the baseline, nothing enqueued yet
		p.rates.mu.Lock()
		last := p.rates.last
		p.rates.mu.Unlock()
		if last.Equal(clock.now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the janitor took no sample within 10 s")
		}
		time.Sleep(20 * time.Millisecond) // the janitor ticks once a second: no event to wait on
	}
	pub := connect(t, east)
	to := client.Target{Addr: client.Addr{Cluster: "west", Node: "west-1", Mailbox: 1}}
	for range 100 {
		sendAsync(t, pub, to, []byte("m"))
	}
	if err := pub.Flush(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if q := p.queue.Stats().Messages; q != 100 {
		t.Fatalf("%d queued for west, want 100", q)
	}
	link := func() LinkStatus {
		for _, l := range east.d.Status().Links {
			if l.Cluster == "west" {
				return l
			}
		}
		t.Fatal("no west link in status")
		return LinkStatus{}
	}
	drainMetric := func() float64 {
		fams, err := east.d.metrics.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() == "wandist_buffer_drain_seconds" && len(f.GetMetric()) == 1 {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no single wandist_buffer_drain_seconds in /metrics")
		return 0
	}
	base := clock.now()
	// One second: 100 enqueued, none dequeued. 30/s in, nothing out: never.
	p.rates.sample(base.Add(time.Second), 100, 0)
	if l := link(); l.EnqueueRate != 30 || l.DequeueRate != 0 || l.DrainSeconds != nil || l.QueuedMessages != 100 {
		t.Fatalf("after 1 s: in %v/s, out %v/s, drain %v, queued %d; want 30, 0, nil (never), 100", l.EnqueueRate, l.DequeueRate, fmtDrain(l.DrainSeconds), l.QueuedMessages)
	}
	if v := drainMetric(); !math.IsInf(v, 1) {
		t.Fatalf("wandist_buffer_drain_seconds %v, want +Inf", v)
	}
	// Another second: nothing in, 90 out. In 0.7*30 = 21/s, out 0.3*90 = 27/s:
	// 100 queued drain at 6/s in 16.67 s.
	p.rates.sample(base.Add(2*time.Second), 100, 90)
	if l := link(); l.EnqueueRate != 21 || l.DequeueRate != 27 || l.DrainSeconds == nil || *l.DrainSeconds != 16.67 {
		t.Fatalf("after 2 s: in %v/s, out %v/s, drain %v s; want 21, 27, 16.67", l.EnqueueRate, l.DequeueRate, fmtDrain(l.DrainSeconds))
	}
	if v := drainMetric(); !near(v, 100.0/6) {
		t.Fatalf("wandist_buffer_drain_seconds %v, want %v", v, 100.0/6)
	}
}

// fmtDrain prints a drain time, nil as "never".
func fmtDrain(d *float64) string {
	if d == nil {
		return "never"
	}
	return fmt.Sprint(*d)
}
