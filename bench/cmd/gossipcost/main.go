// Command gossipcost measures the idle traffic of hashicorp/memberlist, the
// in-cluster membership of issue 18, for docs/scale.md: n members on the
// loopback, encrypted with a 32-byte key as wandist's gossip.secret_file,
// each with a node meta of -meta random bytes, at memberlist's LAN or WAN
// defaults. Once every member sees all n, it counts the loopback's packets
// and bytes and the UDP datagrams and TCP segments sent over -window. Run
// it in a network namespace of its own, where those counters see only it:
//
//	go build -o /tmp/gossipcost ./cmd/gossipcost
//	unshare -rn sh -c 'ip link set lo up && /tmp/gossipcost -n 16 -profile lan -window 60s'
package main

import (
	"bufio"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

func main() {
	n := flag.Int("n", 16, "members")
	profile := flag.String("profile", "lan", "lan or wan: memberlist's DefaultLANConfig or DefaultWANConfig")
	window := flag.Duration("window", time.Minute, "how long the idle traffic is counted")
	metaLen := flag.Int("meta", 128, "bytes of node meta per member (its link listeners, transports)")
	flag.Parse()
	if err := run(*n, *profile, *window, *metaLen); err != nil {
		log.Fatal(err)
	}
}

// meta is a fixed node meta of a given size.
type meta []byte

func (m meta) NodeMeta(limit int) []byte                { return m[:min(len(m), limit)] }
func (meta) NotifyMsg([]byte)                           {}
func (meta) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (meta) LocalState(join bool) []byte                { return nil }
func (meta) MergeRemoteState(buf []byte, join bool)     {}

func run(n int, profile string, window time.Duration, metaLen int) error {
	if !ownNetns() {
		return errors.New("run it in a network namespace of its own (unshare -rn), so that the loopback's counters count only it")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	var ms []*memberlist.Memberlist
	defer func() {
		for _, m := range ms {
			_ = m.Shutdown()
		}
	}()
	for i := range n {
		c := memberlist.DefaultLANConfig()
		if profile == "wan" {
			c = memberlist.DefaultWANConfig()
		} else if profile != "lan" {
			return fmt.Errorf("-profile: want lan or wan, got %q", profile)
		}
		c.Name = fmt.Sprintf("west-%03d", i)
		c.BindAddr, c.BindPort, c.AdvertisePort = "127.0.0.1", 0, 0
		c.SecretKey = key
		md := make([]byte, metaLen) // random: memberlist compresses (LZW), and real metas do not repeat a byte
		if _, err := rand.Read(md); err != nil {
			return err
		}
		c.Delegate = meta(md)
		c.LogOutput = io.Discard
		m, err := memberlist.Create(c)
		if err != nil {
			return fmt.Errorf("member %d: %w", i, err)
		}
		ms = append(ms, m)
		if i > 0 {
			seed := ms[0].LocalNode().FullAddress().Addr
			if _, err := m.Join([]string{seed}); err != nil {
				return fmt.Errorf("member %d joining %s: %w", i, seed, err)
			}
		}
	}
	for deadline := time.Now().Add(time.Minute); !allSee(ms, n); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("members did not all see each other within a minute")
		}
	}
	time.Sleep(5 * time.Second) // the join's gossip retransmissions end
	a, err := counters()
	if err != nil {
		return err
	}
	time.Sleep(window)
	b, err := counters()
	if err != nil {
		return err
	}
	if !allSee(ms, n) {
		return errors.New("a member lost sight of another during the window")
	}
	per := float64(n) * window.Seconds()
	pk, by := float64(b[0]-a[0]), float64(b[1]-a[1])
	fmt.Printf("memberlist %s, %d members, meta %d B, encrypted, idle for %v; per member per second (sent): "+
		"%.2f packets, %.0f bytes (IP; lo counts %.0f with its 14-byte header), UDP datagrams %.2f, TCP segments %.2f\n",
		profile, n, metaLen, window, pk/per, (by-14*pk)/per, by/per, float64(b[2]-a[2])/per, float64(b[3]-a[3])/per)
	return nil
}

func allSee(ms []*memberlist.Memberlist, n int) bool {
	for _, m := range ms {
		if m.NumMembers() != n {
			return false
		}
	}
	return true
}

func ownNetns() bool {
	b, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n")[2:] {
		if name, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && name != "lo" {
			return false
		}
	}
	return true
}

// counters returns the loopback's sent packets and bytes, UDP datagrams
// and TCP segments sent.
func counters() ([4]uint64, error) {
	var c [4]uint64
	b, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		return c, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if name, rest, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && name == "lo" {
			f := strings.Fields(rest)
			c[1], _ = strconv.ParseUint(f[8], 10, 64)
			c[0], _ = strconv.ParseUint(f[9], 10, 64)
		}
	}
	if c[2], err = snmp("Udp:", "OutDatagrams"); err != nil {
		return c, err
	}
	c[3], err = snmp("Tcp:", "OutSegs")
	return c, err
}

func snmp(proto, field string) (uint64, error) {
	f, err := os.Open("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var names []string
	for s := bufio.NewScanner(f); s.Scan(); {
		fs := strings.Fields(s.Text())
		if len(fs) == 0 || fs[0] != proto {
			continue
		}
		if names == nil {
			names = fs
			continue
		}
		for i, nm := range names {
			if nm == field && i < len(fs) {
				return strconv.ParseUint(fs[i], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s %s in /proc/net/snmp", proto, field)
}
