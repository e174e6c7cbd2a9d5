package daemon

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
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
