package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wandist/wandist/client"
)

// addSpool appends a spool section to a config file.
func addSpool(t *testing.T, c cluster, dir string) {
	t.Helper()
	f, err := os.OpenFile(c.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "spool: { dir: %s }\ngroups: { unreachable_grace: 60s }\n", filepath.Join(dir, c.node+"-spool"))
	f.Close()
}

// durableRun streams durable messages from a client of east to a group on
// west while victim ("east" or "west") is killed with SIGKILL and started
// again. Every send confirmed to the client must arrive, none twice.
func durableRun(t *testing.T, victim string, sig syscall.Signal) {
	dir := t.TempDir()
	east, west := writeConfigs(t, dir, "quic")
	addSpool(t, east, dir)
	addSpool(t, west, dir)
	procs := map[string]*proc{}
	procs["west"] = startProc(t, "run", "-c", west.cfg)
	procs["west"].waitLog(t, "msg=started", 10*time.Second)
	procs["east"] = startProc(t, "run", "-c", east.cfg)
	procs["east"].waitLog(t, `msg="link up"`, 10*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	sub, err := client.Connect(ctx, client.Options{Socket: west.socket, ReconnectMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	mb, err := sub.NewMailbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Join(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return status(t, east).Groups > 0 })
	pub, err := client.Connect(ctx, client.Options{Socket: east.socket, ReconnectMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	// The receiver records everything.
	var mu sync.Mutex
	got := map[string]int{}
	arrived := make(chan struct{}, 1) // a message arrived
	recvDone := make(chan struct{})
	rctx, rcancel := context.WithCancel(ctx)
	go func() {
		defer close(recvDone)
		for {
			m, err := mb.Receive(rctx)
			if err != nil {
				if rctx.Err() != nil {
					return
				}
				continue
			}
			mu.Lock()
			got[string(m.Payload)]++
			mu.Unlock()
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
	}()

	// Four senders, each numbering its own messages; a send counts as
	// confirmed only when it returned nil.
	const perSender, senders = 300, 4
	confirmed := make([][]string, senders)
	var wg sync.WaitGroup
	killAt := make(chan struct{})
	var once sync.Once
	for s := range senders {
		wg.Go(func() {
			for i := 0; i < perSender; i++ {
				if s == 0 && i == perSender/3 {
					once.Do(func() { close(killAt) })
				}
				id := fmt.Sprintf("%d-%d", s, i)
				for attempt := 0; ; attempt++ {
					sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
					err := pub.SendGroup(sctx, "orders", []byte(id), client.WithMode(client.Durable))
					scancel()
					if err == nil {
						confirmed[s] = append(confirmed[s], id)
						break
					}
					// Unconfirmed (daemon gone, or no route yet): the message
					// may or may not exist; try the next one after a pause.
					if ctx.Err() != nil || attempt > 200 {
						return
					}
					time.Sleep(50 * time.Millisecond) // a client backing off; not a test wait
					break
				}
			}
		})
	}
	<-killAt
	cfg := map[string]cluster{"east": east, "west": west}[victim]
	if sig == syscall.SIGKILL {
		procs[victim].kill9()
	} else {
		procs[victim].cmd.Process.Signal(sig)
		<-procs[victim].done
		if !strings.Contains(procs[victim].log(), "msg=stopping") {
			t.Fatalf("%s did not stop gracefully:\n%s", victim, procs[victim].log())
		}
	}
	restarted := startProc(t, "run", "-c", cfg.cfg)
	restarted.waitLog(t, `msg="link up"`, 20*time.Second)
	wg.Wait()

	total := 0
	for _, c := range confirmed {
		total += len(c)
	}
	if total < senders*perSender/2 {
		t.Fatalf("only %d of %d sends were confirmed", total, senders*perSender)
	}
	// Wait until every confirmed message arrived (or time out).
	deadline := time.After(60 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for _, c := range confirmed {
			for _, id := range c {
				if got[id] == 0 {
					missing++
				}
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("%d confirmed durable messages never arrived (victim %s)", missing, victim)
		}
	}
	rcancel()
	<-recvDone
	mu.Lock()
	defer mu.Unlock()
	var dups []string
	for id, n := range got {
		if n > 1 {
			dups = append(dups, id+"×"+strconv.Itoa(n))
		}
	}
	if len(dups) > 0 {
		t.Fatalf("duplicated: %s", strings.Join(dups, " "))
	}
	t.Logf("victim %s: %d confirmed, %d received, %d redelivered duplicates dropped by the SDK", victim, total, len(got), sub.Duplicates())
}

func TestDurableKill9Sender(t *testing.T)   { durableRun(t, "east", syscall.SIGKILL) }
func TestDurableKill9Receiver(t *testing.T) { durableRun(t, "west", syscall.SIGKILL) }

// SIGTERM during traffic: a graceful stop loses nothing confirmed either.
func TestDurableSigtermSender(t *testing.T) { durableRun(t, "east", syscall.SIGTERM) }
