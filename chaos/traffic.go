//go:build linux

package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wandist/wandist/client"
)

// group is the process group the consumer joins and the producers send to.
const group = "chaos"

// Flow is one producer's kind of traffic: a delivery mode and a lane.
type Flow struct {
	Name string // as in the report, e.g. "reliable-high"
	Tag  string // short id in payloads
	Mode client.Mode
	High bool
	TTL  time.Duration
	// Group is where the flow's producer sends ("": the suite's group).
	Group string
}

// group returns the group the flow is sent to.
func (f Flow) group() string {
	if f.Group != "" {
		return f.Group
	}
	return group
}

// Flows are the producers of every scenario: every delivery mode, both
// lanes of reliable, and reliable with a TTL.
var Flows = []Flow{
	{Name: "at-most-once", Tag: "amo", Mode: client.AtMostOnce},
	{Name: "reliable", Tag: "rel", Mode: client.Reliable},
	{Name: "reliable-high", Tag: "relh", Mode: client.Reliable, High: true},
	{Name: "durable", Tag: "dur", Mode: client.Durable},
	{Name: "reliable-ttl-1s", Tag: "ttl", Mode: client.Reliable, TTL: time.Second},
}

func flowByTag(tag string) int { return indexOfFlow(Flows, tag) }

// indexOfFlow returns the index of the flow with tag in flows, -1 if none.
func indexOfFlow(flows []Flow, tag string) int {
	for i, f := range flows {
		if f.Tag == tag {
			return i
		}
	}
	return -1
}

// Outcome is what the sending daemon answered to one send.
type Outcome uint8

// Outcomes of a send.
const (
	NotSent   Outcome = iota // never attempted
	Accepted                 // OK: the daemon took it (durable: written to its spool)
	Busy                     // ErrBusy: the buffer (or spool) was full; not sent
	Uncertain                // the daemon went away or did not answer in time: it may have taken it
	Refused                  // any other error: not sent
)

// Payload returns message seq of flow tag, size bytes long (at least the
// header): "tag|seq|padding|crc32", the CRC over everything before it.
func Payload(tag string, seq uint64, size int) []byte {
	head := tag + "|" + strconv.FormatUint(seq, 10) + "|"
	pad := max(size-len(head)-9, 0)
	b := make([]byte, 0, len(head)+pad+9)
	b = append(b, head...)
	for i := range pad {
		b = append(b, 'a'+byte((seq+uint64(i))%26))
	}
	b = append(b, '|')
	return fmt.Appendf(b, "%08x", crc32.ChecksumIEEE(b))
}

// ErrBadPayload is returned for a payload that is not a Payload, or whose
// CRC does not match (it was corrupted).
var ErrBadPayload = errors.New("chaos: bad payload")

// ParsePayload returns a payload's flow tag and sequence number.
func ParsePayload(b []byte) (tag string, seq uint64, err error) {
	s := string(b)
	i := strings.LastIndexByte(s, '|')
	if i < 0 || len(s)-i-1 != 8 {
		return "", 0, fmt.Errorf("%w: no CRC field in %.40q", ErrBadPayload, s)
	}
	if want := fmt.Sprintf("%08x", crc32.ChecksumIEEE(b[:i+1])); want != s[i+1:] {
		return "", 0, fmt.Errorf("%w: CRC %s, computed %s, in %.40q", ErrBadPayload, s[i+1:], want, s)
	}
	parts := strings.SplitN(s, "|", 3)
	if len(parts) < 3 {
		return "", 0, fmt.Errorf("%w: %.40q has no seq", ErrBadPayload, s)
	}
	seq, err = strconv.ParseUint(parts[1], 10, 64)
	if err != nil || seq == 0 {
		return "", 0, fmt.Errorf("%w: bad seq in %.40q", ErrBadPayload, s)
	}
	return parts[0], seq, nil
}

// SendRecord is one send of a producer.
type SendRecord struct {
	At      time.Time // when the send started
	Outcome Outcome
}

// Producer sends one flow's messages at a fixed rate through its own SDK
// client, and records each send's outcome.
type Producer struct {
	Flow Flow
	c    *client.Client

	mu      sync.Mutex
	records []SendRecord // index seq-1
}

// NewProducer connects a producer to a daemon's socket.
func NewProducer(ctx context.Context, socket string, f Flow) (*Producer, error) {
	c, err := client.Connect(ctx, client.Options{Socket: socket, Name: "chaos-" + f.Tag, ReconnectMax: 500 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	return &Producer{Flow: f, c: c}, nil
}

// Close disconnects the producer.
func (p *Producer) Close() { p.c.Close() }

// Records returns a copy of the send records (index seq-1).
func (p *Producer) Records() []SendRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]SendRecord(nil), p.records...)
}

// Run sends rate messages per second of size bytes until stop is closed.
// Sends are timed from a fixed schedule, so a slow answer does not lower
// the offered load (missed slots are sent at once, a few at a time).
func (p *Producer) Run(stop <-chan struct{}, rate, size int) {
	interval := time.Second / time.Duration(rate)
	opts := []client.SendOption{client.WithMode(p.Flow.Mode)}
	if p.Flow.High {
		opts = append(opts, client.WithHighPriority())
	}
	if p.Flow.TTL > 0 {
		opts = append(opts, client.WithTTL(p.Flow.TTL))
	}
	start := time.Now()
	for seq := uint64(1); ; seq++ {
		due := start.Add(time.Duration(seq-1) * interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-stop:
				return
			case <-time.After(wait):
			}
		} else {
			select {
			case <-stop:
				return
			default:
			}
		}
		at := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.c.SendGroup(ctx, p.Flow.group(), Payload(p.Flow.Tag, seq, size), opts...)
		cancel()
		p.mu.Lock()
		p.records = append(p.records, SendRecord{At: at, Outcome: classify(err)})
		p.mu.Unlock()
	}
}

func classify(err error) Outcome {
	switch {
	case err == nil:
		return Accepted
	case errors.Is(err, client.ErrBusy):
		return Busy
	case errors.Is(err, client.ErrUnavailable), errors.Is(err, client.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return Uncertain
	}
	return Refused
}

// WaitMember polls until the daemon behind c lists a member of the group
// in cluster (reachable).
func WaitMember(ctx context.Context, c *client.Client, cluster string, timeout time.Duration) error {
	return WaitMemberOf(ctx, c, group, cluster, timeout)
}

// WaitMemberOf polls until the daemon behind c lists a reachable member
// of group g in cluster.
func WaitMemberOf(ctx context.Context, c *client.Client, g, cluster string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ms, err := c.Members(ctx, g)
		for _, m := range ms {
			if m.Addr.Cluster == cluster && m.Reachable {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: no reachable member of %q in %s after %v (members %v, last error %v)", ErrDaemon, g, cluster, timeout, ms, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Delivery is one message the consumer printed.
type Delivery struct {
	Flow int // index in the consumer's flows (Flows); -1 for a payload that did not parse
	Seq  uint64
	At   time.Time
}

// Consumer is a `wandistd sub` process that joins the group and prints
// each payload; the suite reads its output. Being a separate process, it
// can be stopped (SIGSTOP) to make a stuck consumer, or replaced by a
// successor (Restart).
type Consumer struct {
	bin, socket string
	group       string
	flows       []Flow // Delivery.Flow indexes these
	stderr      *os.File

	mu   sync.Mutex
	got  []Delivery // every process's, in order
	bad  []string   // payloads that did not parse (corrupted)
	proc *consumerProc
}

// consumerProc is one `wandistd sub` process of a Consumer.
type consumerProc struct {
	cmd   *exec.Cmd
	ready chan struct{} // closed once it joined the group
	done  chan struct{} // closed once its output was read to the end
}

// StartConsumer runs `wandistd sub` on socket and waits until it joined.
func StartConsumer(ctx context.Context, bin, socket, logPath string) (*Consumer, error) {
	return StartConsumerOf(ctx, bin, socket, group, Flows, logPath)
}

// StartConsumerOf runs `wandistd sub` on socket for group g, whose
// deliveries are of flows, and waits until it joined.
func StartConsumerOf(ctx context.Context, bin, socket, g string, flows []Flow, logPath string) (*Consumer, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c := &Consumer{bin: bin, socket: socket, group: g, flows: flows, stderr: logf}
	if err := c.start(ctx); err != nil {
		logf.Close()
		return nil, err
	}
	return c, nil
}

// start runs a new process and waits until it joined the group.
func (c *Consumer) start(ctx context.Context) error {
	cmd := exec.Command(c.bin, "sub", "--socket", c.socket, "--group", c.group)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	p := &consumerProc{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
	var once sync.Once
	go func() {
		s := bufio.NewScanner(errPipe)
		for s.Scan() {
			fmt.Fprintln(c.stderr, s.Text())
			if strings.HasPrefix(s.Text(), "subscribed to") {
				once.Do(func() { close(p.ready) })
			}
		}
	}()
	go c.read(out, p.done)
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return fmt.Errorf("%w: consumer exited before it subscribed (see %s)", ErrDaemon, c.stderr.Name())
	case <-ctx.Done():
		c.Stop()
		return ctx.Err()
	case <-time.After(15 * time.Second):
		c.Stop()
		return fmt.Errorf("%w: consumer did not subscribe in 15s (see %s)", ErrDaemon, c.stderr.Name())
	}
}

func (c *Consumer) read(out io.Reader, done chan struct{}) {
	defer close(done)
	r := bufio.NewReaderSize(out, 1<<20)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			now := time.Now()
			line = line[:len(line)-1]
			tag, seq, perr := ParsePayload(line)
			d := Delivery{Flow: indexOfFlow(c.flows, tag), Seq: seq, At: now}
			c.mu.Lock()
			if perr != nil || d.Flow < 0 {
				d.Flow = -1
				c.bad = append(c.bad, string(line))
			}
			c.got = append(c.got, d)
			c.mu.Unlock()
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// Deliveries returns what the consumer printed so far, in order.
func (c *Consumer) Deliveries() []Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Delivery(nil), c.got...)
}

// Bad returns the payloads that did not parse (corrupted or foreign).
func (c *Consumer) Bad() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bad...)
}

// Count returns how many lines the consumer printed so far.
func (c *Consumer) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *Consumer) current() *consumerProc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc
}

// Pause stops (SIGSTOP) or resumes (SIGCONT) the consumer process.
func (c *Consumer) Pause(on bool) error {
	sig := syscall.SIGCONT
	if on {
		sig = syscall.SIGSTOP
	}
	return c.current().cmd.Process.Signal(sig)
}

// Restart stops the consumer process as an operator would (SIGTERM: it
// leaves the group and prints what it took) and starts its successor,
// which joins the group; it returns once the successor joined.
func (c *Consumer) Restart(ctx context.Context) error {
	p := c.current()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.cmd.Wait()
	return c.start(ctx)
}

// Stop ends the consumer process and waits for its output to be read.
func (c *Consumer) Stop() {
	p := c.current()
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	<-p.done
	_ = p.cmd.Wait()
	c.stderr.Close()
}

// consumerLog is where a scenario's consumer writes its standard error.
func consumerLog(dir string) string { return filepath.Join(dir, "consumer.log") }
