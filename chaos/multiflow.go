//go:build linux

package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/wandist/wandist/client"
)

// CheckSpread accounts for flows whose messages spread over several
// consumers (the members of a group on several nodes): losses, duplicates
// (a message two consumers got is a duplicate), deliveries of what was
// not sent, and the times from the heal over every consumer's deliveries
// together; out of order per consumer, as order is promised per sender,
// receiving mailbox and lane (two members of a group are not ordered
// with each other). gots[i] is consumer i's deliveries, in order.
func CheckSpread(flows []Flow, records [][]SendRecord, gots [][]Delivery, heal time.Time) []FlowResult {
	var all []Delivery
	for _, g := range gots {
		all = append(all, g...)
	}
	slices.SortStableFunc(all, func(a, b Delivery) int { return a.At.Compare(b.At) })
	out := CheckFlows(flows, records, all, heal)
	for i := range out {
		out[i].OutOfOrder = 0
	}
	for _, g := range gots {
		for i, r := range CheckFlows(flows, records, g, heal) {
			out[i].OutOfOrder += r.OutOfOrder
		}
	}
	return out
}

// FlowSpec is one producer of a multi-node flow: its flow (tag, mode,
// group) and the node whose daemon it sends through.
type FlowSpec struct {
	Flow Flow
	From string
}

// ConsumerSpec is one consumer: a `wandistd sub` of a group on a node.
type ConsumerSpec struct {
	Group string
	On    string
}

// MultiFlow is producers on some nodes of a mesh sending to groups whose
// members (consumers) are on other nodes; every message is accounted for
// by CheckSpread.
type MultiFlow struct {
	Flows     []Flow
	Specs     []ConsumerSpec
	producers []*Producer // index: flow
	consumers []*Consumer // index: spec

	stop    chan struct{}
	senders sync.WaitGroup
	once    sync.Once
}

// StartMultiFlow starts the consumers and the producers' clients and
// waits until each producer's daemon sees a reachable member of its group
// in every cluster where the group has a consumer. Run starts sending.
func StartMultiFlow(ctx context.Context, mesh *Mesh, dir string, flows []FlowSpec, consumers []ConsumerSpec) (f *MultiFlow, err error) {
	f = &MultiFlow{Specs: consumers, stop: make(chan struct{})}
	for _, s := range flows {
		f.Flows = append(f.Flows, s.Flow)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	for _, c := range consumers {
		n := mesh.Node(c.On)
		if n == nil {
			return f, fmt.Errorf("chaos: consumer on unknown node %q", c.On)
		}
		cons, err := StartConsumerOf(ctx, mesh.Bin, n.Socket, c.Group, f.Flows, filepath.Join(dir, fmt.Sprintf("consumer-%s-%s.log", c.Group, c.On)))
		if err != nil {
			return f, err
		}
		f.consumers = append(f.consumers, cons)
	}
	for _, s := range flows {
		n := mesh.Node(s.From)
		if n == nil {
			return f, fmt.Errorf("chaos: producer on unknown node %q", s.From)
		}
		p, err := NewProducer(ctx, n.Socket, s.Flow)
		if err != nil {
			return f, err
		}
		f.producers = append(f.producers, p)
		for _, c := range consumers {
			nn, _ := mesh.Topo.Node(c.On)
			if c.Group == s.Flow.group() {
				if err := WaitMemberOf(ctx, p.c, c.Group, nn.Cluster, 30*time.Second); err != nil {
					return f, fmt.Errorf("producer %s on %s: %w", s.Flow.Tag, s.From, err)
				}
			}
		}
	}
	return f, nil
}

// Run starts every producer: rate messages per second of size bytes each.
func (f *MultiFlow) Run(rate, size int) {
	for _, p := range f.producers {
		f.senders.Go(func() { p.Run(f.stop, rate, size) })
	}
}

// StopSending stops the producers and waits for their last sends.
func (f *MultiFlow) StopSending() {
	f.once.Do(func() { close(f.stop) })
	f.senders.Wait()
}

// Close stops sending and ends the producers and consumers.
func (f *MultiFlow) Close() {
	f.StopSending()
	for _, p := range f.producers {
		p.Close()
	}
	for _, c := range f.consumers {
		c.Stop()
	}
}

func (f *MultiFlow) records() [][]SendRecord {
	recs := make([][]SendRecord, len(f.producers))
	for i, p := range f.producers {
		recs[i] = p.Records()
	}
	return recs
}

// Deliveries returns each consumer's deliveries (index: Specs).
func (f *MultiFlow) Deliveries() [][]Delivery {
	out := make([][]Delivery, len(f.consumers))
	for i, c := range f.consumers {
		out[i] = c.Deliveries()
	}
	return out
}

// Check accounts for every message of every flow (see CheckSpread).
func (f *MultiFlow) Check(heal time.Time) []FlowResult {
	return CheckSpread(f.Flows, f.records(), f.Deliveries(), heal)
}

// Pending counts the accepted reliable and durable messages (without a
// TTL) not delivered yet.
func (f *MultiFlow) Pending() int {
	n := 0
	for i, r := range f.Check(time.Time{}) {
		if fl := f.Flows[i]; fl.Mode == client.Durable || fl.Mode == client.Reliable && fl.TTL == 0 {
			n += r.Lost
		}
	}
	return n
}

// Bad returns the payloads the consumers could not parse.
func (f *MultiFlow) Bad() []string {
	var out []string
	for _, c := range f.consumers {
		out = append(out, c.Bad()...)
	}
	return out
}

// LastReceiver returns the node of group g's consumer that got the latest
// delivery ("" if none got any): the member the producers use now.
func (f *MultiFlow) LastReceiver(g string) string {
	var node string
	var at time.Time
	for i, c := range f.consumers {
		if f.Specs[i].Group != g {
			continue
		}
		if d := c.Deliveries(); len(d) > 0 && d[len(d)-1].At.After(at) {
			node, at = f.Specs[i].On, d[len(d)-1].At
		}
	}
	return node
}

// DeliveredOn counts consumer deliveries on node since t.
func (f *MultiFlow) DeliveredOn(node string, since time.Time) int {
	n := 0
	for i, c := range f.consumers {
		if f.Specs[i].On != node {
			continue
		}
		for _, d := range c.Deliveries() {
			if !d.At.Before(since) {
				n++
			}
		}
	}
	return n
}

// Drain waits until every accepted reliable message was delivered, or
// until timeout.
func (f *MultiFlow) Drain(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		n := f.Pending()
		if n == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("chaos: %d accepted messages still undelivered %v after the senders stopped", n, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
