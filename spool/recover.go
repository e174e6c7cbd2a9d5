package spool

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// Open opens (or creates) the spool in o.Dir, recovers its state, starts a
// new segment holding a checkpoint of that state, deletes the segments that
// hold nothing left to send, and starts the writer goroutine. Corruption it
// can recover around is reported in State.Problems; a key that does not
// match the records fails with an error wrapping ErrKeyMismatch (and a
// *CorruptError), leaving the files untouched. State.Pending holds every
// unacknowledged message in memory: as much as the segment files hold.
func Open(o Options) (*Spool, *State, error) { return open(o, hooks{}) }

func open(o Options, h hooks) (*Spool, *State, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	if err := ensureDir(o.Dir, h); err != nil {
		return nil, nil, err
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	rc := &recovery{key: o.Key, meta: newMeta(), msgs: map[string][]Message{}}
	if err := rc.scan(o.Dir); err != nil {
		return nil, nil, err
	}
	for _, p := range rc.problems {
		o.Logger.Warn("spool: corruption recovered around", "file", p.File, "offset", p.Offset, "reason", p.Reason)
	}
	if err := rc.truncateTail(h); err != nil {
		return nil, nil, err
	}
	if rc.stream == 0 {
		rc.stream = newStreamID()
	}

	s := &Spool{log: o.Logger, lock: lock, wake: make(chan struct{}, 1), exited: make(chan struct{})}
	w := &writer{
		s: s, h: h, seal: newSealer(o.Key, rc.stream), dir: o.Dir,
		maxBytes: o.MaxBytes, segBytes: o.SegmentBytes, meta: rc.meta,
	}
	s.w = w
	for _, sc := range rc.segs {
		w.segs = append(w.segs, &segment{num: sc.num, path: sc.path, size: sc.size, maxSeq: sc.maxSeq})
		w.total += sc.size
	}
	if err := w.startSegment(rc.nextNum); err != nil {
		return nil, nil, fmt.Errorf("spool: directory %s is not writable: %w", o.Dir, err)
	}
	w.deleteAcked()
	w.publish()
	ok = true
	go s.run()
	return s, rc.state(), nil
}

// ensureDir creates dir (0700) if it is missing.
func ensureDir(dir string, h hooks) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("spool: %s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("spool: cannot create directory %s: %w", dir, err)
	}
	if err := h.syncDir(filepath.Dir(filepath.Clean(dir))); err != nil {
		return fmt.Errorf("spool: created directory %s: %w", dir, err)
	}
	return nil
}

func newStreamID() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// scannedSeg is a segment file as found by recovery.
type scannedSeg struct {
	num    uint64
	path   string
	size   int64             // file size (after truncation of a torn tail)
	good   int64             // end of the last good record; -1 if the header is unusable
	bad    int               // 1 + index in problems of the bad record reading stopped at; 0 = none
	maxSeq map[string]uint64 // per peer, highest Seq of a MESSAGE read
}

// recovery accumulates what the segments hold, read in order.
type recovery struct {
	key      [32]byte
	seal     *sealer
	stream   uint64
	meta     meta
	msgs     map[string][]Message
	segs     []*scannedSeg
	problems []Problem
	nextNum  uint64 // number of the segment Open creates
	decrypts int    // records that decrypted
	buf      []byte
}

// scan reads every segment file of dir, in order, without modifying any.
func (rc *recovery) scan(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("spool: read directory %s: %w", dir, err)
	}
	rc.nextNum = 1
	for _, e := range entries {
		num, ok := parseSegName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		rc.segs = append(rc.segs, &scannedSeg{num: num, path: filepath.Join(dir, e.Name()), maxSeq: map[string]uint64{}})
		rc.nextNum = max(rc.nextNum, num+1)
	}
	slices.SortFunc(rc.segs, func(a, b *scannedSeg) int { return cmpUint(a.num, b.num) })
	br := bufio.NewReaderSize(nil, 1<<20)
	for _, sc := range rc.segs {
		if err := rc.scanSegment(sc, br); err != nil {
			return err
		}
	}
	return nil
}

// parseSegName parses "<16 lowercase hex digits>.seg".
func parseSegName(name string) (uint64, bool) {
	if len(name) != 20 || name[16:] != ".seg" {
		return 0, false
	}
	for _, c := range name[:16] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(name[:16], 16, 64)
	return n, err == nil && n < 1<<63
}

func (rc *recovery) problem(sc *scannedSeg, off int64, reason string) {
	rc.problems = append(rc.problems, Problem{File: sc.path, Offset: off, Reason: reason})
}

// scanSegment reads one segment's header and records, stopping at the first
// bad record.
func (rc *recovery) scanSegment(sc *scannedSeg, br *bufio.Reader) error {
	sc.good = -1
	f, err := os.Open(sc.path)
	if err != nil {
		return fmt.Errorf("spool: open segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("spool: stat segment: %w", err)
	}
	sc.size = fi.Size()
	br.Reset(f)

	var hdr [headerSize]byte
	n, err := io.ReadFull(br, hdr[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("spool: read segment %s: %w", sc.path, err)
	}
	stream, num, herr := parseHeader(hdr[:n])
	switch {
	case errors.Is(herr, errUnsupportedVersion):
		return &CorruptError{File: sc.path, Reason: herr.Error()}
	case herr != nil:
		rc.problem(sc, 0, "segment header: "+herr.Error()+"; segment skipped")
		return nil
	case num != sc.num:
		rc.problem(sc, 0, fmt.Sprintf("segment header: number %d does not match the file name; segment skipped", num))
		return nil
	case rc.stream != 0 && stream != rc.stream:
		rc.problem(sc, 0, fmt.Sprintf("segment header: stream %016x, not this spool's %016x; segment skipped", stream, rc.stream))
		return nil
	case rc.stream == 0:
		rc.stream = stream
		rc.seal = newSealer(rc.key, stream)
	}
	sc.good = headerSize

	for off := int64(headerSize); off < sc.size; {
		var pre [prefixSize]byte
		left := sc.size - off
		if left < prefixSize {
			return rc.bad(sc, off, fmt.Sprintf("torn record: %d bytes, shorter than a record prefix", left))
		}
		if _, err := io.ReadFull(br, pre[:]); err != nil {
			return fmt.Errorf("spool: read segment %s: %w", sc.path, err)
		}
		n := int64(binary.LittleEndian.Uint32(pre[:4]))
		switch {
		case n < nonceSize+tagSize:
			return rc.bad(sc, off, fmt.Sprintf("record length %d shorter than nonce and tag", n))
		case n+prefixSize > MaxRecordBytes:
			return rc.bad(sc, off, fmt.Sprintf("record length %d exceeds the limit %d", n, MaxRecordBytes-prefixSize))
		case n > left-prefixSize:
			return rc.bad(sc, off, fmt.Sprintf("torn record: length %d beyond end of file (%d bytes left)", n, left-prefixSize))
		}
		if int64(cap(rc.buf)) < n {
			rc.buf = make([]byte, n)
		}
		body := rc.buf[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return fmt.Errorf("spool: read segment %s: %w", sc.path, err)
		}
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(pre[4:]) {
			return rc.bad(sc, off, "CRC mismatch")
		}
		plain, err := rc.seal.open(body, sc.num, off)
		if err != nil {
			if rc.decrypts == 0 {
				return fmt.Errorf("%w: %w", ErrKeyMismatch, &CorruptError{File: sc.path, Offset: off,
					Reason: "record with a valid checksum fails authentication: the spool key does not match"})
			}
			return rc.bad(sc, off, "authentication failed (AEAD)")
		}
		rc.decrypts++
		r, err := decodeRecord(plain)
		if err != nil {
			return rc.bad(sc, off, err.Error())
		}
		rc.apply(sc, &r)
		off += prefixSize + n
		sc.good = off
	}
	return nil
}

// bad records a bad record at off: reading of the segment stops there.
func (rc *recovery) bad(sc *scannedSeg, off int64, reason string) error {
	rc.problem(sc, off, reason)
	sc.bad = len(rc.problems)
	return nil
}

// apply merges one record into the recovered state.
func (rc *recovery) apply(sc *scannedSeg, r *record) {
	switch r.typ {
	case recMessage:
		p := r.msg.Peer
		rc.msgs[p] = append(rc.msgs[p], r.msg)
		sc.maxSeq[p] = max(sc.maxSeq[p], r.msg.Seq)
		pm := rc.meta.peers[p]
		pm.next = max(pm.next, r.msg.Seq+1)
		rc.meta.peers[p] = pm
	case recAck:
		pm := rc.meta.peers[r.peer]
		pm.acked = max(pm.acked, r.seq)
		rc.meta.peers[r.peer] = pm
	case recReceived:
		rc.meta.received[r.key] = r.seq
	case recCheckpoint:
		for p, cp := range r.cp.peers {
			pm := rc.meta.peers[p]
			pm.next = max(pm.next, cp.next)
			pm.acked = max(pm.acked, cp.acked)
			rc.meta.peers[p] = pm
		}
		for k, v := range r.cp.received {
			rc.meta.received[k] = v
		}
	}
}

// truncateTail cuts a torn or corrupt tail off the last readable segment,
// after the last good record, and makes the cut durable. The problems of
// earlier segments say that the rest of the segment was skipped.
func (rc *recovery) truncateTail(h hooks) error {
	var last *scannedSeg
	for _, sc := range rc.segs {
		if sc.good >= 0 {
			last = sc
		}
	}
	for _, sc := range rc.segs {
		if sc.bad > 0 && sc != last {
			rc.problems[sc.bad-1].Reason += "; rest of segment skipped"
		}
	}
	if last == nil || last.bad == 0 {
		return nil
	}
	f, err := os.OpenFile(last.path, os.O_RDWR, 0)
	if err == nil {
		err = f.Truncate(last.good)
		if err == nil && !h.noSync {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("spool: truncate the torn tail of %s: %w", last.path, err)
	}
	last.size = last.good
	rc.problems[last.bad-1].Reason += "; truncated"
	return nil
}

// state builds the State returned by Open.
func (rc *recovery) state() *State {
	st := &State{
		StreamID: rc.stream,
		Pending:  map[string][]Message{},
		NextSeq:  map[string]uint64{},
		Received: map[RecvKey]uint64{},
		Problems: rc.problems,
	}
	for p, pm := range rc.meta.peers {
		if pm.next > 0 {
			st.NextSeq[p] = pm.next
		}
	}
	for p, msgs := range rc.msgs {
		acked := rc.meta.peers[p].acked
		msgs = slices.DeleteFunc(msgs, func(m Message) bool { return m.Seq <= acked })
		if len(msgs) > 0 {
			slices.SortStableFunc(msgs, func(a, b Message) int { return cmpUint(a.Seq, b.Seq) })
			st.Pending[p] = msgs
		}
	}
	for k, v := range rc.meta.received {
		st.Received[k] = v
	}
	return st
}
