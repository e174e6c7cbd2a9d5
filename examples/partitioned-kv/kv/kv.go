// Package kv is a small key-value store split into partitions over
// wandist: each server owns some partitions of a partitioned group, and
// clients anywhere in the linked clusters reach the owner of a key with
// Call and WithKey. It is the example of the wandist SDK's partitioned
// groups, request-reply and reconnects.
package kv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/wandist/wandist/client"
)

// Partitions is the number of partitions of the store's group.
const Partitions = 64

// ErrNotFound is returned by Get for a key that has no value.
var ErrNotFound = errors.New("kv: not found")

// Server holds the keys of the partitions it owns.
type Server struct {
	mu   sync.Mutex
	data map[string]string
}

// Serve joins group owning the given partitions and answers requests until
// ctx ends. Requests are "PUT key value" and "GET key"; answers "OK",
// "VALUE value" or "NOTFOUND".
func (s *Server) Serve(ctx context.Context, c *client.Client, group string, own []int) error {
	mb, err := c.NewMailbox(ctx)
	if err != nil {
		return err
	}
	if err := mb.JoinPartitions(ctx, group, Partitions, own...); err != nil {
		return err
	}
	s.mu.Lock()
	if s.data == nil {
		s.data = map[string]string{}
	}
	s.mu.Unlock()
	return mb.Serve(ctx, 8, func(ctx context.Context, m *client.Message) {
		_ = m.Reply(ctx, []byte(s.handle(string(m.Payload))))
	})
}

func (s *Server) handle(req string) string {
	op, rest, _ := strings.Cut(req, " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case "PUT":
		k, v, _ := strings.Cut(rest, " ")
		s.data[k] = v
		return "OK"
	case "GET":
		if v, ok := s.data[rest]; ok {
			return "VALUE " + v
		}
		return "NOTFOUND"
	}
	return "ERROR unknown request " + op
}

// Client reaches the store from any node.
type Client struct {
	C     *client.Client
	Group string
}

// Put stores value under key, at the owner of key's partition.
func (k *Client) Put(ctx context.Context, key, value string) error {
	rep, err := k.C.CallGroup(ctx, k.Group, []byte("PUT "+key+" "+value), client.WithKey(key))
	if err != nil {
		return err
	}
	if string(rep.Payload) != "OK" {
		return fmt.Errorf("kv: put %q: %s", key, rep.Payload)
	}
	return nil
}

// Get returns the value of key.
func (k *Client) Get(ctx context.Context, key string) (string, error) {
	rep, err := k.C.CallGroup(ctx, k.Group, []byte("GET "+key), client.WithKey(key))
	if err != nil {
		return "", err
	}
	v, ok := strings.CutPrefix(string(rep.Payload), "VALUE ")
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}
