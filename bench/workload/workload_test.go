package workload

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakePath is an in-memory system: Send queues a copy, a goroutine delivers
// it. While cut it holds messages (hold) or drops them; dropSeq and dupSeq
// mis-deliver one message each.
type fakePath struct {
	hold    bool
	dropSeq int64
	dupSeq  int64

	mu   sync.Mutex
	cut  bool
	held [][]byte
	ch   chan []byte
	done chan struct{}
}

func newFake(hold bool) *fakePath {
	return &fakePath{hold: hold, dropSeq: -1, dupSeq: -1}
}

func (f *fakePath) OpenPipe(ctx context.Context, onMsg func([]byte)) (Sender, error) {
	f.ch, f.done = make(chan []byte, 1<<16), make(chan struct{})
	go func() {
		defer close(f.done)
		for b := range f.ch {
			onMsg(b)
		}
	}()
	return f, nil
}

func (f *fakePath) Send(p []byte) error {
	b := append([]byte(nil), p...)
	seq := int64(binary.BigEndian.Uint64(b))
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.cut && f.hold:
		f.held = append(f.held, b)
		return nil
	case f.cut, seq == f.dropSeq:
		return nil
	}
	f.ch <- b
	if seq == f.dupSeq {
		f.ch <- b
	}
	return nil
}

func (f *fakePath) Sync(ctx context.Context) error { return nil }
func (f *fakePath) Close() error {
	close(f.ch)
	<-f.done
	return nil
}

func (f *fakePath) SetCut(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = on
	if !on {
		for _, b := range f.held {
			f.ch <- b
		}
		f.held = nil
	}
}

func (f *fakePath) CutKind() string { return "fake" }

func TestOneWayCountsWhatArrived(t *testing.T) {
	f := newFake(false)
	f.dropSeq, f.dupSeq = 10, 20
	r, err := OneWay(context.Background(), f, OneWayOptions{Size: 64, N: 1000, Idle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Counts
	if c.Expected != 1000 || c.Delivered != 999 || c.Lost() != 1 || c.Duplicates != 1 || c.OutOfOrder != 0 {
		t.Fatalf("counts %+v, want 999 of 1000 delivered, 1 duplicate", c)
	}
	if r.Elapsed <= 0 || r.MsgsPerSec() <= 0 || r.MBPerSec() != r.MsgsPerSec()*64/1e6 {
		t.Fatalf("elapsed %v rate %v MB/s %v", r.Elapsed, r.MsgsPerSec(), r.MBPerSec())
	}
}

func TestOneWayForADuration(t *testing.T) {
	f := newFake(false)
	start := time.Now()
	r, err := OneWay(context.Background(), f, OneWayOptions{Size: 64, Duration: 50 * time.Millisecond, Window: 100, Idle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Counts
	// Whole windows only, and every one of them expected and delivered.
	if c.Expected == 0 || c.Expected%100 != 0 || !c.Clean() || c.OutOfOrder != 0 {
		t.Fatalf("counts %+v, want whole windows of 100 all delivered once", c)
	}
	if time.Since(start) < 50*time.Millisecond || r.Elapsed <= 0 {
		t.Fatalf("run took %v (elapsed %v), want at least its duration", time.Since(start), r.Elapsed)
	}
}

func TestOneWayForADurationStopsAtItsBound(t *testing.T) {
	r, err := OneWay(context.Background(), newFake(false), OneWayOptions{Size: 64, Duration: time.Hour, N: 350, Window: 100, Idle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Counts; c.Expected != 300 || !c.Clean() {
		t.Fatalf("counts %+v, want the 3 whole windows of 100 under the bound of 350, all delivered", c)
	}
}

func TestOneWayNeedsALength(t *testing.T) {
	if _, err := OneWay(context.Background(), newFake(false), OneWayOptions{Size: 64}); !errors.Is(err, ErrNoLength) {
		t.Fatalf("err %v, want ErrNoLength", err)
	}
}

// echo answers after delay; wrong makes it answer request 5 with another payload.
type echo struct {
	delay time.Duration
	wrong bool
}

func (e echo) Call(ctx context.Context, p []byte) ([]byte, error) {
	t := time.NewTimer(e.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if e.wrong && binary.BigEndian.Uint64(p) == 5 {
		q := append([]byte(nil), p...)
		binary.BigEndian.PutUint64(q, 6)
		return q, nil
	}
	return p, nil
}

func (echo) Close() error { return nil }

func TestLatencyTimesFromIntendedSend(t *testing.T) {
	const delay = 3 * time.Millisecond
	r, err := Latency(context.Background(), echo{delay: delay}, LatencyOptions{Size: 32, Rate: 1000, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 200 || r.OK != 200 || r.Errors != 0 || r.Latency.N != 200 {
		t.Fatalf("result %+v, want 200 answered", r)
	}
	if r.Latency.P50 < delay || r.Latency.Max < r.Latency.P999 || r.Latency.P999 < r.Latency.P99 || r.Latency.P99 < r.Latency.P50 {
		t.Fatalf("latencies %+v: want ordered and at least the echo's %v", r.Latency, delay)
	}
	if !r.Sustained(time.Hour) || r.Sustained(delay/2) {
		t.Fatalf("Sustained: p99 %v judged wrongly", r.Latency.P99)
	}
	bad, err := Latency(context.Background(), echo{wrong: true}, LatencyOptions{Size: 32, Rate: 1000, Duration: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if bad.Errors != 1 || bad.OK != 19 || bad.Sustained(time.Hour) {
		t.Fatalf("a wrong reply: %+v, want 1 error", bad)
	}
	if err := Warm(context.Background(), echo{wrong: true}, 32, 10); !errors.Is(err, ErrWrongReply) {
		t.Fatalf("Warm with a wrong reply: %v", err)
	}
	if _, err := Latency(context.Background(), echo{}, LatencyOptions{Size: 32}); err == nil {
		t.Fatal("zero rate: want an error")
	}
}

func TestMaxRateStopsAtFirstFailure(t *testing.T) {
	var tried []int
	best, steps, err := MaxRate(context.Background(), []int{1, 2, 3, 4}, time.Millisecond, func(_ context.Context, rate int) (LatencyResult, error) {
		tried = append(tried, rate)
		r := LatencyResult{Rate: rate, Sent: 10, OK: 10}
		if rate >= 3 {
			r.Latency.P99 = 2 * time.Millisecond
		}
		return r, nil
	})
	if err != nil || best != 2 || len(steps) != 4 || !slices.Equal(tried, []int{1, 2, 3, 3}) {
		t.Fatalf("best %d, %d steps, tried %v, err %v; want best 2 after trying 1, 2, 3 and 3 again", best, len(steps), tried, err)
	}
	// A step that fails once and passes on its second try does not end the search.
	calls := 0
	best, _, _ = MaxRate(context.Background(), []int{1, 2}, time.Millisecond, func(_ context.Context, rate int) (LatencyResult, error) {
		calls++
		r := LatencyResult{Rate: rate, Sent: 10, OK: 10}
		if calls == 1 {
			r.OK = 9 // one request lost on the first try
		}
		return r, nil
	})
	if best != 2 || calls != 3 {
		t.Fatalf("best %d after %d calls, want 2 after 3", best, calls)
	}
}

func TestRestoreSeesHeldAndLostMessages(t *testing.T) {
	o := RestoreOptions{Size: 32, Rate: 1000, Before: 50 * time.Millisecond, Cut: 100 * time.Millisecond, After: 50 * time.Millisecond, Idle: 200 * time.Millisecond}
	// A path that keeps what was sent during the cut and delivers it at the heal.
	f := newFake(true)
	r, err := Restore(context.Background(), f, f, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.SentDuring < 50 || r.LostDuring != 0 || r.FirstCutMsg < 0 || r.Drained < r.FirstCutMsg || r.FirstAny < 0 || !r.Counts.Clean() || r.CutKind != "fake" {
		t.Fatalf("holding path: %+v, want every message sent during the cut delivered after the heal", r)
	}
	// A path that drops while cut.
	f = newFake(false)
	r, err = Restore(context.Background(), f, f, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.SentDuring < 50 || r.LostDuring != r.SentDuring || r.FirstCutMsg != -1 || r.Drained != -1 || r.Counts.Lost() != r.SentDuring {
		t.Fatalf("dropping path: %+v, want every message sent during the cut lost", r)
	}
	if r.FirstAny < 0 {
		t.Fatalf("dropping path: nothing delivered after the heal: %+v", r)
	}
}

func TestIdleLinkPerLinkIsTheSlopeAfterTheWarmLinks(t *testing.T) {
	const kib = 1024
	r := IdleLinkResult{Links: 50, WarmLinks: 10, BaseRSS: 15 << 20, WarmRSS: 15<<20 + 10*300*kib, LinkedRSS: 15<<20 + 10*300*kib + 40*100*kib}
	if got := r.PerLink() / kib; got != 100 {
		t.Errorf("PerLink = %v KiB, want 100 (the growth from 10 to 50 links)", got)
	}
	if got := r.Average() / kib; got != 140 {
		t.Errorf("Average = %v KiB, want 140 (from none to 50)", got)
	}
	r.WarmLinks, r.WarmRSS = 0, 0 // no warm reading: the average
	if got := r.PerLink() / kib; got != 140 {
		t.Errorf("PerLink without a warm reading = %v KiB, want the average, 140", got)
	}
	if got := (IdleLinkResult{}).PerLink(); got != 0 {
		t.Errorf("PerLink of no links = %v, want 0", got)
	}
}
