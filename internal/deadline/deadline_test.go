package deadline

import (
	"testing"
	"testing/synctest"
	"time"
)

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := New()
		if closed(d.Wait()) {
			t.Fatal("a new deadline has passed")
		}
		d.Set(time.Now().Add(time.Second))
		w := d.Wait()
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if closed(w) {
			t.Fatal("passed before its time")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if !closed(w) {
			t.Fatal("not passed at its time")
		}
		d.Set(time.Time{})
		if closed(d.Wait()) {
			t.Fatal("clearing a passed deadline left it passed")
		}
		d.Set(time.Now().Add(-time.Second))
		if !closed(d.Wait()) {
			t.Fatal("a deadline in the past has not passed")
		}
		d.Set(time.Now().Add(time.Hour))
		w = d.Wait()
		d.Set(time.Time{})
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if closed(w) || closed(d.Wait()) {
			t.Fatal("a cleared deadline fired")
		}
	})
}
