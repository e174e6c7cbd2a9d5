//go:build !linux

package workload

import "time"

// pacer sleeps with the runtime's timers where nanosleep's precision is not
// available.
type pacer struct{}

func newPacer() pacer { return pacer{} }

func (pacer) until(t time.Time) { time.Sleep(time.Until(t)) }

func (pacer) release() {}
