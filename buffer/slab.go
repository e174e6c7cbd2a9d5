package buffer

// Small payloads are copied into shared blocks, one block at a time per
// lane, instead of an allocation each: a sender's daemon copies every
// payload it accepts (the read buffer it came in is reused), and an
// allocation per 128-byte message, in fresh memory scattered over the
// heap, was a tenth of its CPU time.
//
// A block stays in memory while any message in it is held. A lane releases
// its messages in order (cumulative acks; at-most-once messages as they are
// sent), so apart from the block being filled, a lane keeps at most the
// tail of one block alive beyond what it holds: at most slabBlock bytes per
// lane and destination, the room the lane keeps for its next messages
// included.
const (
	slabBlock = 16 << 10 // bytes in a block
	slabMax   = 2 << 10  // larger payloads get an allocation of their own
)

// copyPayload returns a copy of p, in the lane's current block when p is
// small. The copy's capacity is its length: an append cannot spill into the
// next payload. Called with the queue's lock held.
func (l *lane) copyPayload(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	if len(p) > slabMax {
		out := make([]byte, len(p))
		copy(out, p)
		return out
	}
	if len(p) > len(l.slab) {
		l.slab = make([]byte, slabBlock)
	}
	out := l.slab[:len(p):len(p)]
	copy(out, p)
	l.slab = l.slab[len(p):]
	return out
}

// msgBlock is how many Messages EnqueueCopy allocates at a time per lane.
// Like a payload block, a block stays in memory while any message in it is
// held; a Message is about 150 bytes.
const msgBlock = 64

// newMessage returns a zero Message from the lane's current block. Called
// with the queue's lock held.
func (l *lane) newMessage() *Message {
	if len(l.spare) == 0 {
		l.spare = make([]Message, msgBlock)
	}
	m := &l.spare[0]
	l.spare = l.spare[1:]
	return m
}
