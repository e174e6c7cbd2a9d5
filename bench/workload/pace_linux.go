package workload

import (
	"runtime"
	"syscall"
	"time"
)

// prSetTimerSlack is prctl's PR_SET_TIMERSLACK.
const prSetTimerSlack = 29

// pacer sleeps until a given time with a few tens of microseconds of
// precision: the Go runtime's timers wake up to a millisecond late on this
// kernel, which would add up to 1 ms to every latency timed from an
// intended send time. It locks its goroutine to an OS thread, lowers the
// thread's timer slack to 1 µs and sleeps with nanosleep(2).
type pacer struct{}

// newPacer must be called from the goroutine that will call until; release
// undoes it.
func newPacer() pacer {
	runtime.LockOSThread()
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1000, 0)
	return pacer{}
}

func (pacer) until(t time.Time) {
	for {
		d := time.Until(t)
		if d <= 0 {
			return
		}
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
}

func (pacer) release() { runtime.UnlockOSThread() }
