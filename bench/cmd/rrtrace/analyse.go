package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wandist/wandist/bench/latency"
)

// event is one finished system call of the trace.
type event struct {
	end  time.Duration // when a read returned, when a write began (perf's clock)
	who  string        // east, west or sdk
	call string        // read, write, futex, ...
	ret  int64         // its result (bytes for reads and writes)
	wake bool          // a futex wake that woke a thread
	fd   int           // the file descriptor of a read or write (-1: none)
}

// line matches perf trace's lines of finished calls: "TS ( DUR ms): comm/TID
// [... [continued]: ]call(args) = RET".
var line = regexp.MustCompile(`^\s*([\d.]+) \(\s*([\d.]+) ms\): \S+/(\d+)\s+(?:\.\.\. \[continued\]: )?(\w+)\((.*)\)\s+= (-?\d+)`)

var fdArg = regexp.MustCompile(`^fd: (\d+)`)

// parse reads perf trace's output; tids maps a thread to its process's label.
func parse(r io.Reader, tids map[int]string) ([]event, error) {
	var evs []event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ts, err1 := strconv.ParseFloat(m[1], 64)
		dur, err2 := strconv.ParseFloat(m[2], 64)
		tid, err3 := strconv.Atoi(m[3])
		ret, err4 := strconv.ParseInt(m[6], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return nil, fmt.Errorf("trace line %q: bad number", sc.Text())
		}
		who, ok := tids[tid]
		if !ok {
			continue
		}
		// A read is placed at its end (when it had the data), a write at
		// its start: the reader may have the data before the write returns.
		at := ts + dur
		if dirOf(m[4]) == "out" {
			at = ts
		}
		e := event{end: time.Duration(at * float64(time.Millisecond)), who: who, call: m[4], ret: ret}
		e.wake = e.call == "futex" && strings.Contains(m[5], "WAKE") && ret > 0
		e.fd = -1
		if f := fdArg.FindStringSubmatch(m[5]); f != nil {
			e.fd, _ = strconv.Atoi(f[1])
		}
		evs = append(evs, e)
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].end < evs[j].end })
	return evs, sc.Err()
}

// stage is one step of the round trip: a system call of a process that
// moves a request or a reply (at least minFrame bytes).
type stage struct {
	who, dir, name string // dir: "in" (a read) or "out" (a write)
	caller         bool   // an SDK stage on the caller's socket (else the replier's)
}

const minFrame = 100 // requests and replies of 128 B; acks, Results, eventfd writes are smaller

var trip = []stage{
	{"sdk", "out", "Call writes the request", true},
	{"east", "in", "east reads it from the socket", false},
	{"east", "out", "east writes it on the link", false},
	{"west", "in", "west reads it from the link", false},
	{"west", "out", "west writes it to the replier", false},
	{"sdk", "in", "the replier's SDK reads it", false},
	{"sdk", "out", "Reply writes the reply", false},
	{"west", "in", "west reads it from the socket", false},
	{"west", "out", "west writes it on the link", false},
	{"east", "in", "east reads it from the link", false},
	{"east", "out", "east writes it to the caller", false},
	{"sdk", "in", "the caller's SDK reads it", true},
}

// matches says whether e is this stage's call; callFd is the caller's
// socket in the SDK process (the replier's is another).
func (s stage) matches(e event, callFd int) bool {
	if e.who != s.who || dirOf(e.call) != s.dir || !e.frame() {
		return false
	}
	if s.who == "sdk" {
		return (e.fd == callFd) == s.caller
	}
	return true
}

// frame says whether e may carry a request or a reply: it moved at least
// minFrame bytes, or it is a recvmmsg (its result counts datagrams, not
// bytes: QUIC's receiver; the first after the sender's packet is taken).
func (e event) frame() bool {
	if e.call == "recvmmsg" {
		return e.ret > 0
	}
	return e.ret >= minFrame
}

func dirOf(call string) string {
	switch call {
	case "read", "readv", "recvmsg", "recvmmsg", "recvfrom":
		return "in"
	case "write", "writev", "sendmsg", "sendmmsg", "sendto":
		return "out"
	}
	return ""
}

// breakdown follows each request through the stages (the first matching
// call after the one before) and returns every stage's times since the
// stage before, for trips that completed within maxTrip.
func breakdown(evs []event, maxTrip time.Duration) [][]time.Duration {
	per := make([][]time.Duration, len(trip))
	callFd := callerFd(evs)
	for i, e := range evs {
		if e.who != "sdk" || dirOf(e.call) != "out" || e.ret < minFrame || e.fd != callFd {
			continue
		}
		times := []time.Duration{0}
		at, j := e.end, i+1
		for _, s := range trip[1:] {
			for j < len(evs) && !s.matches(evs[j], callFd) {
				j++
			}
			if j == len(evs) || evs[j].end-e.end > maxTrip {
				break
			}
			times = append(times, evs[j].end-at)
			at = evs[j].end
			j++
		}
		if len(times) < len(trip) {
			continue
		}
		for k, d := range times {
			per[k] = append(per[k], d)
		}
	}
	return per
}

// callerFd returns the SDK's socket to east: the one that most often reads
// a frame just after east wrote one.
func callerFd(evs []event) int {
	votes := map[int]int{}
	last := ""
	for _, e := range evs {
		if e.ret < minFrame || dirOf(e.call) == "" {
			continue
		}
		if e.who == "sdk" && dirOf(e.call) == "in" && last == "east" {
			votes[e.fd]++
		}
		last = e.who
	}
	best := -1
	for fd, n := range votes {
		if best < 0 || n > votes[best] {
			best = fd
		}
	}
	return best
}

// report prints the stages' p50 and p99 and the calls per request.
func report(w io.Writer, evs []event, requests int) {
	per := breakdown(evs, 50*time.Millisecond)
	fmt.Fprintf(w, "%d trips followed\n| stage | p50 | p99 |\n|---|---|---|\n", len(per[0]))
	var sum50 time.Duration
	for k, s := range trip[1:] {
		l := latency.Summarize(per[k+1])
		sum50 += l.P50
		fmt.Fprintf(w, "| %s: %s | %v | %v |\n", s.who, s.name, l.P50.Round(time.Microsecond), l.P99.Round(time.Microsecond))
	}
	fmt.Fprintf(w, "| sum of the p50s | %v | |\n", sum50.Round(time.Microsecond))
	counts := map[string]map[string]int{}
	callFd := callerFd(evs)
	first, last := -1, -1 // the run: from the first request written to the last reply read
	for i, e := range evs {
		if e.who == "sdk" && e.fd == callFd && e.ret >= minFrame {
			if first < 0 && dirOf(e.call) == "out" {
				first = i
			}
			if dirOf(e.call) == "in" {
				last = i
			}
		}
	}
	if first < 0 || last < first {
		fmt.Fprintln(w, "no request found in the trace")
		return
	}
	for _, e := range evs[first : last+1] {
		if counts[e.who] == nil {
			counts[e.who] = map[string]int{}
		}
		k := e.call
		if e.wake {
			k = "futex wake"
		}
		counts[e.who][k]++
	}
	fmt.Fprintf(w, "\nsystem calls per request (%d requests, from the first request to the last reply):\n", requests)
	for _, who := range []string{"east", "west", "sdk"} {
		var keys []string
		for k := range counts[who] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "  %s:", who)
		for _, k := range keys {
			fmt.Fprintf(w, " %s %.1f", k, float64(counts[who][k])/float64(requests))
		}
		fmt.Fprintln(w)
	}
}
