package proc

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// The command name holds a space and a parenthesis.
	s := "1234 (we ird) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 100 1000 200"
	got, err := parseStat(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Fatalf("cpu %v, want %v", got, want)
	}
	if _, err := parseStat("1234 (x) S 1 2"); err == nil {
		t.Fatal("short stat line: want an error")
	}
}

func TestStatusKiB(t *testing.T) {
	s := "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t  1024 kB\n"
	if n, err := statusKiB(s, "VmHWM"); err != nil || n != 2048<<10 {
		t.Fatalf("VmHWM %d %v", n, err)
	}
	if _, err := statusKiB(s, "VmSwap"); err == nil {
		t.Fatal("missing key: want an error")
	}
}

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.PeakRSS < s.RSS {
		t.Fatalf("sample %+v: want 0 < RSS <= peak", s)
	}
}

func TestStartCaptureStop(t *testing.T) {
	p, err := Start(Spec{Name: "cat", Path: "/bin/sh", Args: []string{"-c", "echo hello ready; exec cat"}, LogDir: t.TempDir(), Capture: true, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if l, err := p.WaitLine(ctx, "ready"); err != nil || l != "hello ready" {
		t.Fatalf("line %q err %v", l, err)
	}
	if err := p.WriteLine("ping"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitLine(ctx, "ping"); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitLine(ctx, "never"); err == nil {
		t.Fatal("WaitLine after exit: want an error")
	}
}

func TestParseSystemBusy(t *testing.T) {
	got, err := parseSystemBusy("cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := 1610 * time.Millisecond; got != want { // 100+5+50+3+2+1 ticks
		t.Fatalf("busy %v, want %v", got, want)
	}
	if _, err := parseSystemBusy("intr 1 2 3\n"); err == nil {
		t.Fatal("no cpu line: want an error")
	}
	if _, err := SystemBusy(); err != nil {
		t.Fatal(err)
	}
}
