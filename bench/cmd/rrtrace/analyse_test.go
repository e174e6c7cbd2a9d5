package main

import (
	"strings"
	"testing"
	"time"
)

// One trip as perf trace prints it (east tid 10, west 20, SDK 30 and 31),
// with calls that are no stage of it: an eventfd write, an EAGAIN read, a
// DeliverAck; west reads the request before east's write of it returned.
const oneTrip = `
     1.000 ( 0.010 ms): rrtrace/30 write(fd: 15, buf: 0x1, count: 173)                        = 173
     1.020 ( 0.005 ms): wandistd/10 write(fd: 7, buf: 0x1, count: 8)                           = 8
     1.100 ( 0.010 ms): wandistd/10 read(fd: 15, buf: 0x1, count: 4096)                        = 173
     1.115 ( 0.005 ms): wandistd/10 read(fd: 15, buf: 0x1, count: 4096)                        = -1 EAGAIN (Resource temporarily unavailable)
     1.200 ( 0.050 ms): wandistd/10 write(fd: 12, buf: 0x1, count: 203)                        = 203
     1.230 ( 0.010 ms): wandistd/20 read(fd: 12, buf: 0x1, count: 2048)                        = 203
     1.300 ( 0.010 ms): wandistd/20 write(fd: 15, buf: 0x1, count: 192)                        = 192
     1.400 ( 0.010 ms): rrtrace/31 read(fd: 17, buf: 0x1, count: 4096)                         = 192
     1.500 ( 0.010 ms): rrtrace/31 write(fd: 17, buf: 0x1, count: 179)                         = 179
     1.550 ( 0.010 ms): rrtrace/31 write(fd: 17, buf: 0x1, count: 10)                          = 10
     1.600 ( 0.010 ms): wandistd/20 read(fd: 15, buf: 0x1, count: 4096)                        = 189
     1.700 ( 0.010 ms): wandistd/20 write(fd: 12, buf: 0x1, count: 199)                        = 199
     1.800 ( 0.010 ms): wandistd/10 read(fd: 12, buf: 0x1, count: 2048)                        = 199
     1.900 ( 0.010 ms): wandistd/10 write(fd: 15, buf: 0x1, count: 188)                        = 188
     2.000 ( 0.010 ms): rrtrace/30 read(fd: 15, buf: 0x1, count: 4096)                         = 188
`

func TestBreakdownFollowsOneTrip(t *testing.T) {
	tids := map[int]string{10: "east", 20: "west", 30: "sdk", 31: "sdk"}
	evs, err := parse(strings.NewReader(oneTrip), tids)
	if err != nil {
		t.Fatal(err)
	}
	if fd := callerFd(evs); fd != 15 {
		t.Fatalf("caller's socket %d, want 15", fd)
	}
	per := breakdown(evs, time.Second)
	// Reads at their end, writes at their start (µs after the one before).
	want := []time.Duration{0, 110, 90, 40, 60, 110, 90, 110, 90, 110, 90, 110}
	for k, w := range want {
		if len(per[k]) != 1 {
			t.Fatalf("stage %d (%s): %d samples, want 1", k, trip[k].name, len(per[k]))
		}
		if got := per[k][0].Round(time.Microsecond); got != w*time.Microsecond {
			t.Errorf("stage %d (%s): %v, want %v", k, trip[k].name, got, w*time.Microsecond)
		}
	}
}
