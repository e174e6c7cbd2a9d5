package buffer

// Room reports, without queuing anything, whether a message of size bytes
// would fit now: nil, or ErrBusy (counted as a rejection). Durable sends
// check it before they are written to the spool.
func (q *Queue) Room(size int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count+1 > q.limits.MaxMessages || q.bytes+int64(size) > q.limits.MaxBytes {
		q.st.Rejected++
		return ErrBusy
	}
	return nil
}

// Restore queues m with the Seq it already has (a durable message, written
// to the spool, or recovered from it at start), ignoring the bounds: the
// message was confirmed to its sender, so it is never refused. Seqs must
// increase per lane.
func (q *Queue) Restore(m *Message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := &q.lanes[m.Lane]
	if m.Enqueued.IsZero() {
		m.Enqueued = q.now()
	}
	if m.Seq >= l.nextSeq {
		l.nextSeq = m.Seq + 1
	}
	l.push(m)
	l.unsent++
	q.count++
	q.bytes += m.size()
	q.st.Enqueued++
	q.wake(int(m.Lane))
}

// CountDrop counts a message discarded by the caller after Next handed it
// out (for example, its TTL ran out just before it was written).
func (q *Queue) CountDrop(reason string) {
	q.mu.Lock()
	q.st.Dropped[reason]++
	q.mu.Unlock()
}

// AdvanceSeq records that Seqs below next were assigned on the lane (by an
// earlier run whose messages were all acknowledged), so acks up to next-1
// are valid.
func (q *Queue) AdvanceSeq(lane int, next uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if next > q.lanes[lane].nextSeq {
		q.lanes[lane].nextSeq = next
	}
}

// SetLimits changes the queue's limits (a config reload). Messages already
// held stay, even above new, lower limits; new ones meet the new limits.
func (q *Queue) SetLimits(l Limits) {
	q.mu.Lock()
	q.limits = l.withDefaults()
	q.mu.Unlock()
}
