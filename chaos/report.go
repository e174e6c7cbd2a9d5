//go:build linux

package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// Report is the results of a matrix run.
type Report struct {
	Profile string
	Machine string
	Paths   string
	Took    time.Duration
	Results []*Result
}

// DescribeMachine says what the run ran on.
func DescribeMachine(ctx context.Context, e *Env) string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				mem = fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	var u unix.Utsname
	kernel := "unknown kernel"
	if unix.Uname(&u) == nil {
		kernel = "Linux " + unix.ByteSliceToString(u.Release[:])
	}
	distro := ""
	if data, err := os.ReadFile("/etc/debian_version"); err == nil {
		distro = ", Debian " + strings.TrimSpace(string(data))
	}
	netem := "no netem in the kernel"
	if e.Topo.Netem {
		netem = "netem available"
	}
	return fmt.Sprintf("%s, %d cores, %s; %s%s (%s); %s; run %s", cpu, runtime.NumCPU(), mem, kernel, distro, netem,
		runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}

func dur(d time.Duration) string {
	if d < 0 {
		return "–"
	}
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func (r *Result) verdict() string {
	if r.Passed() {
		return "PASS"
	}
	return "FAIL"
}

// Table renders the results as aligned text, one row per flow.
func (rep *Report) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
	fmt.Fprintln(w, "scenario\ttransport\tflow\tsent\tbusy\tunconf\tdelivered\tlost\texpired\tdup\tooo\theal→first\theal→drained\tpeak RSS e/w MiB\tverdict")
	for _, r := range rep.Results {
		for i, f := range r.Flows {
			sc, tr, mem, v := "", "", "", ""
			if i == 0 {
				sc, tr, v = r.Scenario, r.Transport, r.verdict()
				mem = fmt.Sprintf("%d/%d (≤%d)", r.PeakKB["east"]>>10, r.PeakKB["west"]>>10, r.LimitKB>>10)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", sc, tr, f.Flow, f.Sent, f.Busy, f.Uncertain,
				f.Delivered, f.Lost, f.Expired, f.Duplicated, f.OutOfOrder, dur(f.HealToFirst), dur(f.HealToDrained), mem, v)
		}
	}
	w.Flush()
	for _, r := range rep.Results {
		fmt.Fprintf(&b, "%s/%s: %s\n", r.Scenario, r.Transport, r.Effect)
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "  FAIL %s\n", f)
		}
	}
	return b.String()
}

// Markdown renders the report as the page docs/chaos.md; plots are the
// file names of the flapping plots, per transport.
func (rep *Report) Markdown(plots map[string]string) string {
	var b strings.Builder
	pass, total := 0, len(rep.Results)
	for _, r := range rep.Results {
		if r.Passed() {
			pass++
		}
	}
	b.WriteString("# Chaos suite results\n\n")
	b.WriteString("Written by `go test ./chaos -run TestChaos -chaos.profile=full -timeout 90m -v` (as root; see\n")
	b.WriteString("[chaos/doc.go](../chaos/doc.go)). Real `wandistd` processes in network namespaces `east` and `west`,\n")
	b.WriteString("joined through a `wan` namespace where the faults are applied; producers send sequence-numbered,\n")
	b.WriteString("CRC-checked messages through the Go SDK in every delivery mode; a `wandistd sub` process consumes; the\n")
	b.WriteString("checker accounts for every message. Each scenario starts fresh daemons (QUIC or TCP link, spool on\n")
	b.WriteString("both nodes), sends for 2 s, applies the fault, heals it, sends 3 s more, then waits for the backlog.\n\n")
	fmt.Fprintf(&b, "**%d of %d scenario runs passed** (profile `%s`, %s).\n\n", pass, total, rep.Profile, rep.Took.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %s\n", rep.Machine)
	fmt.Fprintf(&b, "- Fault paths: %s\n", rep.Paths)
	b.WriteString("- Load: 5 flows × 200 msgs/s (buffer-full: 1,000), 256-byte payloads; `buffer.max_bytes` 4 MiB; `local.client_buffer` 8 MiB\n")
	b.WriteString("  (stuck consumer: 1 MiB); keepalive 500 ms / 3 s; reconnect 100 ms to 1 s; `unreachable_grace` 30 s (the default); spool on both nodes\n")
	b.WriteString("- Memory limit per daemon: its bound (`buffer.max_bytes` + `local.client_buffer`) plus 48 MiB for the binary, the Go\n")
	b.WriteString("  runtime and GC headroom (an idle daemon is about 19 MiB resident)\n\n")
	b.WriteString("Verdicts: reliable and durable flows lose, duplicate and reorder nothing in every scenario (kill -9 of\n")
	b.WriteString("the receiving daemon and stuck or restarted consumers included; only a kill -9 of the sending daemon may\n")
	b.WriteString("lose the reliable messages it held unacknowledged); a TTL-flow message not delivered is lost unless the\n")
	b.WriteString("nodes counted it expired; at-most-once never duplicates (its losses are reported, not failed); nothing\n")
	b.WriteString("refused or corrupted is delivered; every flow delivers again after the heal; each daemon's peak RSS\n")
	b.WriteString("stays within its bound (buffer + client buffer) plus a fixed slack. `busy`: refused with ErrBusy (not\n")
	b.WriteString("sent, not lost); `unconf`: the daemon went away before answering (not counted as sent); `expired`: TTL\n")
	b.WriteString("flow messages not delivered (within the counted expiries); `ooo`: out of order within the flow's lane;\n")
	b.WriteString("heal→drained: until the last message accepted before the heal arrived.\n\n")
	b.WriteString("## Scenarios\n\n")
	b.WriteString("| scenario | transport | fault | applied via | measured effect | peak RSS east / west (limit) | verdict |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Results {
		verdict := "PASS"
		if !r.Passed() {
			verdict = "**FAIL**: " + esc(strings.Join(r.Failures, "; "))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d / %d MiB (%d) | %s |\n", r.Scenario, r.Transport, esc(r.Fault), strings.Join(r.Via, ", "),
			esc(r.Effect), r.PeakKB["east"]>>10, r.PeakKB["west"]>>10, r.LimitKB>>10, verdict)
	}
	b.WriteString("\n## Every message, per scenario and flow\n\n")
	b.WriteString("| scenario | transport | flow | sent | busy | unconf | delivered | lost | expired | dup | ooo | heal→first | heal→drained |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rep.Results {
		for _, f := range r.Flows {
			lost := fmt.Sprint(f.Lost)
			if f.Lost > 0 {
				lost = "**" + lost + "**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %s | %d | %d | %d | %s | %s |\n", r.Scenario, r.Transport, f.Flow,
				f.Sent, f.Busy, f.Uncertain, f.Delivered, lost, f.Expired, f.Duplicated, f.OutOfOrder, dur(f.HealToFirst), dur(f.HealToDrained))
		}
	}
	if len(plots) > 0 {
		b.WriteString("\n## Flapping link: throughput and backlog\n\n")
		b.WriteString("Messages delivered per second (all flows) and messages east holds for west, over time; the link is\n")
		b.WriteString("blackholed in the shaded windows (2 s up, 1 s down).\n\n")
		for _, tr := range []string{"quic", "tcp"} {
			if p, ok := plots[tr]; ok {
				fmt.Fprintf(&b, "![flapping over %s](%s)\n\n", tr, p)
			}
		}
	}
	var notes []string
	for _, r := range rep.Results {
		for _, n := range r.Notes {
			notes = append(notes, fmt.Sprintf("- %s/%s: %s", r.Scenario, r.Transport, n))
		}
	}
	if len(notes) > 0 {
		b.WriteString("## Notes\n\n" + strings.Join(notes, "\n") + "\n")
	}
	return b.String()
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// WriteMarkdown writes the report to path, and the flapping plots (SVG)
// beside it.
func (rep *Report) WriteMarkdown(path string) error {
	plots := map[string]string{}
	for _, r := range rep.Results {
		if len(r.Samples) == 0 || r.Deliveries == nil {
			continue
		}
		name := fmt.Sprintf("chaos-%s-%s.svg", r.Scenario, r.Transport)
		if err := os.WriteFile(filepath.Join(filepath.Dir(path), name), []byte(Plot(r)), 0o644); err != nil {
			return err
		}
		plots[r.Transport] = name
	}
	return os.WriteFile(path, []byte(rep.Markdown(plots)+keptSection(path)), 0o644)
}

// manyNodesHeading starts the section of docs/chaos.md that TestMultiCluster's
// runs fill by hand; rewriting the matrix's report keeps it.
const manyNodesHeading = "\n## Many nodes: "

// keptSection returns the many-nodes section of the report at path, from
// its heading to the end ("" if there is none).
func keptSection(path string) string {
	old, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if i := strings.Index(string(old), manyNodesHeading); i >= 0 {
		return string(old[i:])
	}
	return ""
}
