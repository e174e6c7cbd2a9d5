package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// segFile is the part of *os.File the writer uses (tests wrap it to inject
// write and fsync failures).
type segFile interface {
	WriteAt(b []byte, off int64) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// hooks are test seams; the zero value is production behaviour.
type hooks struct {
	wrapFile func(segFile) segFile // applied to every segment file the writer opens
	noSync   bool                  // skip every fsync (fuzzing only: recovery logic without disk latency)
	// statfs reports the free and total bytes of the filesystem holding
	// dir; nil: statfs(2).
	statfs func(dir string) (free, size int64, err error)
}

// space returns the free and total bytes of the filesystem holding dir.
func (h hooks) space(dir string) (free, size int64, err error) {
	if h.statfs != nil {
		return h.statfs(dir)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
}

// reserveFor is the room kept free on the spool's filesystem for records
// that free space (acks, received positions) and for a new segment's
// checkpoint: MESSAGE records are refused (ErrFull) rather than use it.
// Without it a full disk could not record the acks that would empty it.
func reserveFor(fsSize int64) int64 {
	return min(max(fsSize/16, 16<<10), 4<<20)
}

// noSyncFile is a segment file whose Sync does nothing (hooks.noSync).
type noSyncFile struct{ segFile }

func (noSyncFile) Sync() error { return nil }

// segment is one live segment file.
type segment struct {
	num    uint64
	path   string
	size   int64             // bytes on disk up to the last good record
	base   int64             // size of header + checkpoint (active segment only)
	maxSeq map[string]uint64 // per peer, highest Seq of a MESSAGE in the segment
}

// deletable reports whether every MESSAGE of seg is acknowledged.
func (seg *segment) deletable(m meta) bool {
	for p, mx := range seg.maxSeq {
		if m.peers[p].acked < mx {
			return false
		}
	}
	return true
}

// errPending marks a batch op whose outcome is not known yet.
var errPending = errors.New("spool: pending")

// writer owns the segment files; only the writer goroutine (and Open, before
// starting it) touches it.
type writer struct {
	s        *Spool
	h        hooks
	seal     *sealer
	dir      string
	maxBytes int64
	segBytes int64

	meta   meta
	segs   []*segment // oldest first; the last one is active
	f      segFile    // the active segment's file
	total  int64      // sum of segs' sizes
	dirty  bool       // bytes written to f since its last fsync
	broken error      // wraps ErrBroken once an fsync failed

	free      int64     // filesystem bytes free at the start of the batch, less what it wrote; -1: unknown
	reserve   int64     // reserveFor the filesystem's size
	lastNoSpc time.Time // when running out of space was last logged

	// The batch being flushed.
	batch    []op
	res      []error // outcome per op
	buf      []byte  // encrypted records not yet written (for the active segment)
	chunk    []int   // ops in buf
	unsynced []int   // ops written but not fsynced
	needSync bool    // an op in unsynced has a done callback to honour
}

func (w *writer) active() *segment { return w.segs[len(w.segs)-1] }

// flush writes one batch: records of the active segment are written with one
// call (more if the batch rotates or must free room), fsynced once, then the
// callbacks run.
func (w *writer) flush(batch []op) {
	w.batch = batch
	w.free = -1
	if free, size, err := w.h.space(w.dir); err == nil {
		w.free, w.reserve = free, reserveFor(size)
	}
	w.res = w.res[:0]
	for range batch {
		w.res = append(w.res, errPending)
	}
	var berr error // fails the rest of the batch
	for i := range batch {
		o := &batch[i]
		switch {
		case w.broken != nil:
			w.res[i] = w.broken
			continue
		case berr != nil:
			w.res[i] = berr
			continue
		case o.kind == recAck && o.seq <= w.meta.peers[o.peer].acked:
			w.res[i] = nil // nothing new to record
			continue
		}
		opErr, err := w.makeRoom(o, recordSize(len(o.plain)))
		if err != nil {
			berr = err
			w.res[i] = err
			continue
		}
		if opErr != nil {
			w.res[i] = opErr
			continue
		}
		act := w.active()
		w.buf = w.seal.appendRecord(w.buf, act.num, act.size+int64(len(w.buf)), o.plain)
		w.chunk = append(w.chunk, i)
	}
	if berr == nil {
		w.writeChunk() // a failure is recorded in w.res
	}
	w.deleteAcked()
	if w.broken == nil {
		if err := w.reclaimActive(false); err != nil {
			w.s.log.Warn("spool: cannot start a new segment to free an acknowledged one", "err", err)
		}
	}
	if w.needSync && w.broken == nil {
		w.sync() // failure is recorded in w.res through w.broken
	}
	// Ops left unsynced: all of them if an fsync failed, else only acks (which
	// need no fsync of their own; a later one covers them).
	for _, i := range w.unsynced {
		if w.broken != nil {
			w.res[i] = w.broken
		} else {
			w.res[i] = nil
		}
	}
	w.unsynced = w.unsynced[:0]
	w.publish()
	for i := range batch {
		if batch[i].done != nil {
			batch[i].done(w.res[i])
		}
	}
	w.batch = nil
	if cap(w.buf) > maxKeptBuffer {
		w.buf = nil // do not hold on to the memory of an exceptional batch
	}
}

// maxKeptBuffer bounds the write buffer kept between batches.
const maxKeptBuffer = 1 << 20

// makeRoom rotates the active segment if the record does not fit in it, and
// enforces MaxBytes for MESSAGE and RECEIVED records, freeing acknowledged
// segments first. opErr fails this op only (ErrFull); err fails the batch.
func (w *writer) makeRoom(o *op, size int64) (opErr, err error) {
	act := w.active()
	if end := act.size + int64(len(w.buf)); end+size > w.segBytes && end > act.base {
		if err := w.rotate(); err != nil {
			return nil, err
		}
	}
	if o.kind == recMessage && w.free >= 0 && w.free-int64(len(w.buf))-size < w.reserve {
		// The filesystem is nearly full: free what acks allow, then refuse
		// messages, keeping the reserve for the acks that will free more.
		if err := w.writeChunk(); err != nil {
			return nil, err
		}
		w.deleteAcked()
		if err := w.reclaimActive(false); err != nil {
			w.s.log.Warn("spool: cannot start a new segment to free an acknowledged one", "err", err)
		}
		if w.free-int64(len(w.buf))-size < w.reserve {
			return fmt.Errorf("%w: the spool's filesystem has %d bytes free; %d are kept for acknowledgements", ErrFull, max(w.free, 0), w.reserve), nil
		}
	}
	if o.kind == recAck || w.total+int64(len(w.buf))+size <= w.maxBytes {
		return nil, nil
	}
	// Over the limit: write what is pending (it may hold acks), drop the
	// segments they free, and if the active segment itself is all acked,
	// rotate so it can go too.
	if err := w.writeChunk(); err != nil {
		return nil, err
	}
	w.deleteAcked()
	if w.total+size > w.maxBytes {
		if err := w.reclaimActive(true); err != nil {
			return nil, err
		}
	}
	if w.total+size > w.maxBytes {
		return fmt.Errorf("%w: %d bytes in segments + %d-byte record > MaxBytes %d", ErrFull, w.total, size, w.maxBytes), nil
	}
	return nil, nil
}

// writeChunk writes buf to the active segment with one call and applies the
// metadata of its ops. On a write error the file is truncated back to its
// last good record and the chunk's ops fail with an error wrapping the OS
// error.
func (w *writer) writeChunk() error {
	if len(w.buf) == 0 {
		return nil
	}
	act := w.active()
	_, err := w.f.WriteAt(w.buf, act.size)
	if err != nil {
		err = fmt.Errorf("spool: write %s at offset %d: %w", act.path, act.size, err)
		if errors.Is(err, syscall.ENOSPC) {
			// Out of space (another writer filled the filesystem): the
			// senders are told busy, and it is logged once per interval.
			err = fmt.Errorf("%w: %w", ErrFull, err)
			if time.Since(w.lastNoSpc) >= 10*time.Second {
				w.lastNoSpc = time.Now()
				w.s.log.Error("spool filesystem full; writes fail until space is freed (logged once per 10s)", "err", err)
			}
		} else {
			w.s.log.Error("spool write failed; batch failed", "err", err)
		}
		if terr := w.f.Truncate(act.size); terr != nil {
			// The file may now hold a partial record past act.size; recovery
			// would stop there, but new records cannot follow it safely.
			w.setBroken(fmt.Errorf("%w: truncate %s after a failed write: %w", ErrBroken, act.path, terr))
		}
		for _, i := range w.chunk {
			w.res[i] = err
		}
		w.buf, w.chunk = w.buf[:0], w.chunk[:0]
		return err
	}
	act.size += int64(len(w.buf))
	w.total += int64(len(w.buf))
	if w.free >= 0 {
		w.free -= int64(len(w.buf))
	}
	w.dirty = true
	for _, i := range w.chunk {
		o := &w.batch[i]
		switch o.kind {
		case recMessage:
			pm := w.meta.peers[o.peer]
			pm.next = max(pm.next, o.seq+1)
			w.meta.peers[o.peer] = pm
			act.maxSeq[o.peer] = max(act.maxSeq[o.peer], o.seq)
			w.needSync = true
		case recAck:
			pm := w.meta.peers[o.peer]
			pm.acked = max(pm.acked, o.seq)
			w.meta.peers[o.peer] = pm
		case recReceived:
			w.meta.received[o.key] = o.seq
			w.needSync = true
		}
	}
	w.unsynced = append(w.unsynced, w.chunk...)
	w.buf, w.chunk = w.buf[:0], w.chunk[:0]
	return nil
}

// sync fsyncs the active segment if bytes were written to it and settles the
// ops written so far: nil on success, the ErrBroken error on failure.
func (w *writer) sync() {
	if w.dirty {
		t := time.Now()
		err := w.f.Sync()
		d := time.Since(t)
		w.s.statsMu.Lock()
		w.s.stats.Fsyncs++
		w.s.stats.FsyncTotal += d
		w.s.stats.LastFsync = d
		w.s.statsMu.Unlock()
		if err != nil {
			w.setBroken(fmt.Errorf("%w: fsync %s: %w", ErrBroken, w.active().path, err))
			return
		}
		w.dirty = false
	}
	var appends uint64
	for _, i := range w.unsynced {
		if w.res[i] == errPending {
			w.res[i] = nil
			if w.batch[i].kind == recMessage {
				appends++
			}
		}
	}
	w.unsynced = w.unsynced[:0]
	w.needSync = false
	w.s.statsMu.Lock()
	w.s.stats.Appends += appends
	w.s.statsMu.Unlock()
}

func (w *writer) setBroken(err error) {
	if w.broken == nil {
		w.broken = err
		w.s.setBroken(err)
	}
}

// rotate makes the active segment durable and starts the next one.
func (w *writer) rotate() error {
	if err := w.writeChunk(); err != nil {
		return err
	}
	w.sync()
	if w.broken != nil {
		return w.broken
	}
	old := w.f
	if err := w.startSegment(w.active().num + 1); err != nil {
		return err
	}
	if err := old.Close(); err != nil {
		w.s.log.Warn("spool: closing a full segment", "err", err)
	}
	return nil
}

// segPath returns the path of segment num.
func segPath(dir string, num uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x.seg", num))
}

// startSegment creates segment num, writes its header and a checkpoint of
// the current metadata, fsyncs it and the directory, and makes it active.
func (w *writer) startSegment(num uint64) error {
	path := segPath(w.dir, num)
	osf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	var f segFile = osf
	if w.h.noSync {
		f = noSyncFile{f}
	}
	if w.h.wrapFile != nil {
		f = w.h.wrapFile(f)
	}
	b := appendHeader(nil, w.seal.stream, num)
	cp := encodeCheckpoint(w.meta)
	if recordSize(len(cp)) > MaxRecordBytes {
		err = fmt.Errorf("spool: checkpoint of %d bytes exceeds the record limit %d", len(cp), MaxRecordBytes)
	} else {
		b = w.seal.appendRecord(b, num, headerSize, cp)
		if _, err = f.WriteAt(b, 0); err != nil {
			err = fmt.Errorf("spool: write %s: %w", path, err)
		}
	}
	if err == nil {
		if serr := f.Sync(); serr != nil {
			w.setBroken(fmt.Errorf("%w: fsync %s: %w", ErrBroken, path, serr))
			err = w.broken
		}
	}
	if err == nil {
		if derr := w.h.syncDir(w.dir); derr != nil {
			w.setBroken(fmt.Errorf("%w: fsync directory %s: %w", ErrBroken, w.dir, derr))
			err = w.broken
		}
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	size := int64(len(b))
	w.segs = append(w.segs, &segment{num: num, path: path, size: size, base: size, maxSeq: map[string]uint64{}})
	w.total += size
	w.f = f
	w.dirty = false
	return nil
}

// syncDir fsyncs a directory, making file creations in it durable.
func (h hooks) syncDir(dir string) error {
	if h.noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// reclaimActive rotates the active segment when every message in it is
// acknowledged and it is worth it (an eighth of a segment, or the filesystem
// is short of space), so that deleteAcked can remove it: otherwise acked
// records stay on disk until the segment fills.
// With always set it rotates whenever that frees something. A failed
// rotation is returned to the caller.
func (w *writer) reclaimActive(always bool) error {
	act := w.active()
	if act.size == act.base || !act.deletable(w.meta) {
		return nil
	}
	low := w.free >= 0 && w.free-int64(len(w.buf)) < 2*w.reserve
	if !always && act.size-act.base < w.segBytes/8 && !low {
		return nil
	}
	before := w.total
	if err := w.rotate(); err != nil {
		return err
	}
	w.deleteAcked()
	if w.free >= 0 {
		w.free += before - w.total
	}
	return nil
}

// deleteAcked removes the non-active segments whose messages are all
// acknowledged. Their metadata lives on in the active segment's checkpoint.
func (w *writer) deleteAcked() {
	kept := w.segs[:0]
	for i, seg := range w.segs {
		if i < len(w.segs)-1 && seg.deletable(w.meta) {
			if err := os.Remove(seg.path); err == nil || errors.Is(err, os.ErrNotExist) {
				w.total -= seg.size
				w.s.log.Debug("spool: segment deleted", "file", seg.path)
				continue
			} else {
				w.s.log.Warn("spool: cannot delete an acknowledged segment", "err", err)
			}
		}
		kept = append(kept, seg)
	}
	clear(w.segs[len(kept):])
	w.segs = kept
}

// publish updates the size figures of Stats.
func (w *writer) publish() {
	w.s.statsMu.Lock()
	w.s.stats.Bytes = w.total
	w.s.stats.Segments = len(w.segs)
	w.s.statsMu.Unlock()
}

// close fsyncs what is still unsynced (acks) and closes the active file.
func (w *writer) close() error {
	var err error
	if w.broken == nil && w.dirty {
		w.sync()
	}
	if w.broken != nil {
		err = w.broken
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("spool: close %s: %w", w.active().path, cerr)
	}
	w.publish()
	return err
}
