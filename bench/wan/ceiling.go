//go:build linux

package wan

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// measureCeiling runs the uncapped flows at every setting.
func measureCeiling(ctx context.Context, p *Path, cfg Config, logf func(string, ...any)) []CeilingRow {
	var rows []CeilingRow
	for _, st := range cfg.Settings {
		row := CeilingRow{Setting: st.Name}
		err := p.Set(ctx, st, 0, false)
		if err == nil {
			row.TCP, err = uncapped(ctx, p, "raw-tcp-bbr", cfg)
		}
		if err == nil {
			row.QUIC, err = uncapped(ctx, p, "raw-quic-go", cfg)
		}
		if err == nil {
			row.UDP, row.UDPOffered, err = udpFlood(ctx, p, cfg.Ceiling)
		}
		if err != nil {
			row.Err = err.Error()
		}
		logf("ceiling %s: tcp %.0f, quic %.0f, udp %.0f of %.0f Mbit/s %s", st.Name, row.TCP/1e6, row.QUIC/1e6, row.UDP/1e6, row.UDPOffered/1e6, row.Err)
		rows = append(rows, row)
	}
	return rows
}

func uncapped(ctx context.Context, p *Path, name string, cfg Config) (float64, error) {
	s, err := newSystem(name, p, binaries{}, "")
	if err != nil {
		return 0, err
	}
	if err := s.Start(ctx); err != nil {
		return 0, err
	}
	defer s.Stop()
	r, err := Bulk(ctx, s, BulkOptions{Size: 64 << 10, Duration: cfg.Ceiling, Warm: cfg.Ceiling / 4, Window: 16 << 20})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return r.Goodput, nil
}

// udpFlood sends 1200-byte datagrams east to west as fast as one
// goroutine can for d and returns the payload bits/s received and sent.
func udpFlood(ctx context.Context, p *Path, d time.Duration) (got, offered float64, err error) {
	rx, err := p.listenUDP("west")
	if err != nil {
		return 0, 0, err
	}
	defer rx.Close()
	_ = rx.SetReadBuffer(8 << 20)
	tx, err := p.listenUDP("east")
	if err != nil {
		return 0, 0, err
	}
	defer tx.Close()
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			k, err := rx.Read(buf)
			if err != nil {
				return
			}
			n.Add(int64(k))
		}
	}()
	msg := make([]byte, 1200)
	dst := rx.LocalAddr()
	var sent int64
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		if k, err := tx.WriteTo(msg, dst); err == nil {
			sent += int64(k)
		}
	}
	el := time.Since(start)
	// What is still in the path's delay line arrives within the RTT.
	_ = rx.SetReadDeadline(time.Now().Add(RTT))
	<-done
	return float64(n.Load()) * 8 / el.Seconds(), float64(sent) * 8 / el.Seconds(), nil
}
