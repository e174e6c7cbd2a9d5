// Package spool is the durable outbound log of wandistd: messages sent in
// "durable" mode are appended here, fsynced before the sender is told they
// are accepted, and recovered after a crash (kill -9 included) until the
// destination node acknowledges them. It also keeps the receive positions
// (RecvKey → last sequence) a receiver needs to deduplicate after a restart.
//
// # On-disk format
//
// The spool is a directory of segment files named <16 hex digits>.seg, the
// segment number. A segment is a 32-byte header followed by records:
//
//	header: magic "WDSPOOL1" | u32 version (1) | u64 stream id | u64 segment number | u32 CRC-32C of the previous 28 bytes
//	record: u32 n | u32 CRC-32C of the n bytes that follow | 24-byte nonce | XChaCha20-Poly1305 ciphertext
//
// All integers are little-endian. The plaintext of a record is a type byte
// (MESSAGE, ACK, RECEIVED, CHECKPOINT) and its body (varint-encoded fields).
// A MESSAGE ends with its payload, or, for a message with headers, with
// its payload and its header block (a length and the bytes, as in
// Message.Headers): a record without headers is as it was before headers
// existed.
// The additional data of the AEAD is the stream id, the segment number and the
// record's offset in the file, so a record cannot be moved to another place,
// segment or spool without failing authentication. Every record is encrypted
// (encryption at rest) with Options.Key; derive it with DeriveKey.
//
// The first record of every segment is a CHECKPOINT holding all metadata
// (per peer: next sequence and acknowledged position; all receive
// positions), so a segment older than the active one can be deleted as soon
// as every MESSAGE in it is acknowledged, without losing metadata.
//
// # Writing
//
// One goroutine owns the files. Append, Ack and SetReceived encode the
// record's plaintext, put it in a queue and wake the writer through a
// capacity-1 channel. The writer drains the whole queue, encrypts and writes
// it with one write call per segment, fsyncs once (group commit), then runs
// the done callbacks of that batch. A write error (e.g. ENOSPC) fails the
// batch, truncates the file back to its last good record, and the spool keeps
// working; an fsync error breaks the spool for good (ErrBroken), because a
// failed fsync cannot be retried safely.
//
// # Recovery
//
// Open reads the segments in order. A corrupt or torn record ends the reading
// of its segment: in the last segment the file is truncated there, in an
// earlier one the rest of that segment is skipped; either way it is reported
// in State.Problems and the other segments are still recovered. A record
// whose checksum is right but which does not decrypt as the first record seen
// means the key is wrong: Open fails with ErrKeyMismatch instead of dropping
// everything. Open then starts a new segment (with a fresh checkpoint) and
// deletes the segments that hold nothing left to send.
//
// # Bounds
//
//   - Options.MaxBytes (default 1 GiB) bounds the total size of the segment
//     files: MESSAGE and RECEIVED records that would exceed it fail with
//     ErrFull. ACK records (written only when they advance a position) and the
//     checkpoint written by Open are exempt, since they are needed to free
//     space.
//   - Options.SegmentBytes (default 64 MiB): a segment is rotated before a
//     record would take it past this size (a larger single record gets a
//     segment of its own).
//   - At most 16 MiB of records may wait for the writer (MaxQueuedBytes); an
//     Append beyond it fails at once with ErrBusy. One record's plaintext is
//     at most MaxQueuedBytes (ErrTooLarge otherwise).
//   - Recovery never allocates for a record more than the smaller of the
//     bytes left in the file and MaxRecordBytes (64 MiB + overhead), which
//     also bounds a checkpoint (all peers and receive positions).
package spool
