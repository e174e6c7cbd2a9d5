package daemon

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
)

// syncBuffer is a bytes.Buffer safe for a logger and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A stuck destination: the backlog shows in /v1/backlog, one alert line is
// logged (not a flood), and a note when it clears.
func TestBacklogAlert(t *testing.T) {
	east, west, relay := relayedPair(t)
	var logs syncBuffer
	east.d.Close()
	east.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	east.opts.Alerts = AlertOptions{Messages: 10, For: time.Nanosecond}
	east.cfg.Admin.Listen = "127.0.0.1:0"
	east.start()
	waitLink(t, east.d, "west", "west-1")
	mb := subscribe(t, west, "g", east)
	cutPath(t, relay, east)
	pub := connect(t, east)
	for i := 0; i < 50; i++ {
		if err := pub.SendAsync(client.Target{Addr: mb.Addr()}, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + east.d.AdminAddr() + "/v1/backlog")
	if err != nil {
		t.Fatal(err)
	}
	var backlog []LinkStatus
	json.NewDecoder(resp.Body).Decode(&backlog)
	resp.Body.Close()
	if len(backlog) != 1 || backlog[0].QueuedMessages != 50 {
		t.Fatalf("/v1/backlog: %+v", backlog)
	}
	waitLog := func(substr string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for !strings.Contains(logs.String(), substr) {
			select {
			case <-deadline:
				t.Fatalf("no %q in the log:\n%s", substr, logs.String())
			case <-time.After(50 * time.Millisecond): // the janitor ticks each second; no event to wait on
			}
		}
	}
	waitLog("backlog alert: destination buffer over threshold")
	relay.SetBlackhole(false)
	waitLog("backlog alert cleared")
	if n := strings.Count(logs.String(), "backlog alert: destination"); n != 1 {
		t.Fatalf("%d alert lines, want exactly one", n)
	}
	for _, path := range []string{"/readyz", "/healthz", "/v1/links", "/v1/groups", "/v1/groups?group=g"} {
		resp, err := http.Get("http://" + east.d.AdminAddr() + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
}

// A node that stops says so: its peer removes its members at once, not
// after the unreachable grace.
func TestShutdownRemovesMembersAtOnce(t *testing.T) {
	east, west := pair(t, "mem")
	east.d.Close()
	east.cfg.Groups.UnreachableGrace = time.Hour
	east.start()
	waitLink(t, west.d, "east", "east-1")
	subscribe(t, west, "g", east)
	ec := connect(t, east)
	w, err := ec.Watch(ctxT(t, 5*time.Second), "g")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := w.Next(ctxT(t, 5*time.Second)); err != nil || e.Op != client.Joined {
		t.Fatalf("%+v %v", e, err)
	}
	west.d.Close()
	e, err := w.Next(ctxT(t, 5*time.Second))
	if err != nil || e.Op != client.Left {
		t.Fatalf("after west stopped: %+v %v (the member should leave at once)", e, err)
	}
}

func TestAdminToken(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Admin.Listen, n.cfg.Admin.Token = "127.0.0.1:0", "s3cret"
	n.start()
	url := "http://" + n.d.AdminAddr() + "/v1/status"
	resp, err := http.Get(url)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the token: %v %v", err, resp)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("with the token: %v %v", err, resp)
	}
	resp.Body.Close()
}

// admin.pprof serves Go's profiles behind the admin token, and only when
// it is on (without a token it is refused: TestAdminWithoutTokenIsReadOnly).
func TestAdminPprof(t *testing.T) {
	get := func(n *node, token string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.d.AdminAddr()+"/debug/pprof/goroutine?debug=1", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK && !strings.Contains(string(body), "goroutine profile:") {
			t.Errorf("pprof answered 200 without a goroutine profile: %.200s", body)
		}
		return resp.StatusCode
	}
	off := newNode(t, "mem", "east", "east-1")
	off.cfg.Admin.Listen, off.cfg.Admin.Token = "127.0.0.1:0", "s3cret"
	off.start()
	if c := get(off, "s3cret"); c != http.StatusNotFound {
		t.Errorf("pprof off: status %d, want 404", c)
	}
	on := newNode(t, "mem", "west", "west-1")
	on.cfg.Admin.Listen, on.cfg.Admin.Token, on.cfg.Admin.Pprof = "127.0.0.1:0", "s3cret", true
	on.start()
	if c := get(on, ""); c != http.StatusUnauthorized {
		t.Errorf("pprof without the token: status %d, want 401", c)
	}
	if c := get(on, "s3cret"); c != http.StatusOK {
		t.Errorf("pprof with the token: status %d, want 200", c)
	}
}

// local.inbox_full: hold. A consumer that stops reading holds its messages
// at the sender: the sender's backlog grows (status, /metrics, one alert
// line), nothing is dropped at the receiver, and once the consumer reads
// again every message arrives, once and in order.
func TestStuckConsumerHoldGrowsSenderBacklog(t *testing.T) {
	for _, tr := range []string{"mem", "quic", "tcp"} {
		t.Run(tr, func(t *testing.T) { testStuckConsumerHold(t, tr) })
	}
}

func testStuckConsumerHold(t *testing.T, tr string) {
	var logs, westLogs syncBuffer
	east, west := pairWith(t, tr, func(east, west *node) {
		east.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		east.opts.Alerts = AlertOptions{Messages: 1000, For: time.Nanosecond}
		east.cfg.Admin.Listen = "127.0.0.1:0"
		west.opts.Logger = slog.New(slog.NewTextHandler(&westLogs, nil))
		west.cfg.Local.InboxFull, west.cfg.Local.ClientBuffer = configs.InboxHold, 64<<10
		west.cfg.Admin.Listen = "127.0.0.1:0"
		// The product's default keepalive timeout: 2 s was hit on this
		// 2-core machine under -race while the chaos suite ran beside
		// (nothing came from west for 2 s, though it pings every 100 ms:
		// its goroutines were starved). The lanes stay held for longer
		// than it below.
		east.cfg.Link.KeepaliveTimeout, west.cfg.Link.KeepaliveTimeout = configs.DefaultKeepaliveTimeout, configs.DefaultKeepaliveTimeout
	})

	stuck, err := client.Connect(ctxT(t, 5*time.Second), client.Options{Socket: west.cfg.Local.Socket, InboxBytes: 64 << 10, HoldWhenFull: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	smb, err := stuck.NewMailbox(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := smb.Join(ctxT(t, 5*time.Second), "stuck"); err != nil {
		t.Fatal(err)
	}
	if err := east.d.WaitMembers(ctxT(t, 5*time.Second), "stuck", 1); err != nil {
		t.Fatal(err)
	}
	// 40 MB on two lanes (each lane's stream window fills while held):
	// far more than every buffer between the two (client inbox, client
	// buffer, socket, stream windows) holds.
	const total = 40_000
	pub := connect(t, east)
	payload := make([]byte, 1024)
	for i := range total {
		binary.BigEndian.PutUint32(payload, uint32(i))
		var opts []client.SendOption
		if i%2 == 1 {
			opts = append(opts, client.WithHighPriority())
		}
		sendAsync(t, pub, client.Target{Group: "stuck"}, payload, opts...)
	}
	if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	backlog := func() LinkStatus {
		t.Helper()
		resp, err := http.Get("http://" + east.d.AdminAddr() + "/v1/backlog")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b []LinkStatus
		if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || len(b) != 1 {
			t.Fatalf("/v1/backlog: %v %+v", err, b)
		}
		return b[0]
	}
	// The backlog is held at the sender, with its age.
	var first LinkStatus
	deadline := time.Now().Add(10 * time.Second)
	for {
		first = backlog()
		if first.QueuedMessages > total/2 && first.OldestSeconds > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sender backlog did not build up: %+v", first)
		}
		time.Sleep(20 * time.Millisecond) // polling the admin API; there is no event to wait on
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for !cond() {
			select {
			case <-deadline:
				t.Fatalf("%s\nlog:\n%s", what, logs.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// It stays (nothing drains) and grows older; /metrics says the same.
	waitFor("oldest age did not grow", func() bool { return backlog().OldestSeconds > first.OldestSeconds })
	if b := backlog(); b.QueuedMessages < first.QueuedMessages {
		t.Fatalf("backlog shrank while the consumer was stuck: %d -> %d", first.QueuedMessages, b.QueuedMessages)
	}
	metrics := scrape(t, east.d.AdminAddr())
	if v := metricValue(t, metrics, `wandist_buffer_messages{cluster="west",node="west-1"}`); v < total/2 {
		t.Fatalf("wandist_buffer_messages = %v, want the held backlog", v)
	}
	if v := metricValue(t, metrics, `wandist_buffer_oldest_seconds{cluster="west",node="west-1"}`); v <= 0 {
		t.Fatalf("wandist_buffer_oldest_seconds = %v", v)
	}
	waitFor("no backlog alert", func() bool {
		return strings.Contains(logs.String(), "backlog alert: destination buffer over threshold")
	})
	// Held for longer than the keepalive timeout: a link whose control
	// traffic waited behind the held lanes would have been declared dead.
	waitFor("backlog not held past the keepalive timeout", func() bool {
		return backlog().OldestSeconds > 1.5*east.cfg.Link.KeepaliveTimeout.Seconds()
	})

	// Unstick: every message arrives, once, in order per lane (even
	// numbers on the normal lane, odd on the high); none was dropped.
	next := [2]uint32{0, 1}
	for i := range total {
		m, err := smb.Receive(ctxT(t, 20*time.Second))
		if err != nil {
			t.Fatalf("after %d messages: %v", i, err)
		}
		got := binary.BigEndian.Uint32(m.Payload)
		if got != next[got%2] {
			t.Fatalf("lane %d: message %d, want %d (lost, duplicated or reordered)", got%2, got, next[got%2])
		}
		next[got%2] += 2
	}
	if n := smb.Dropped(); n != 0 {
		t.Fatalf("%d dropped in the SDK inbox", n)
	}
	if v := metricValue(t, scrape(t, west.d.AdminAddr()), `wandist_messages_dropped_total{reason="inbox_full"}`); v != 0 {
		t.Fatalf("receiver dropped %v for a full inbox", v)
	}
	// The held lanes did not starve the link: it stayed up throughout.
	if ups := east.d.LinkUps("west", "west-1"); ups != 1 {
		t.Fatalf("the link came up %d times: holding the lanes broke it\neast:\n%s\nwest:\n%s", ups, logs.String(), westLogs.String())
	}
	waitFor("alert not cleared", func() bool { return strings.Contains(logs.String(), "backlog alert cleared") })
	if n := strings.Count(logs.String(), "backlog alert: destination"); n != 1 {
		t.Fatalf("%d alert lines, want exactly one", n)
	}
}

// scrape returns the /metrics exposition of an admin address.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String()
}

// metricValue returns the value of one series (name{labels} as exposed),
// 0 if it is absent (a counter vector's series appears at its first count).
func metricValue(t *testing.T, exposition, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}
