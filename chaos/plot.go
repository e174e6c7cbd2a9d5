//go:build linux

package chaos

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Plot draws a run as SVG: messages delivered per second (top panel) and
// messages the sender holds for the receiver (bottom panel) over time,
// with the fault windows shaded.
func Plot(r *Result) string {
	const (
		width, height = 900, 460
		left, right   = 70, 20
		panelH        = 160
		top1, top2    = 40, 260
		bucket        = 250 * time.Millisecond
	)
	t0 := r.Began
	end := t0
	for _, s := range r.Samples {
		if s.T.After(end) {
			end = s.T
		}
	}
	for _, d := range r.Deliveries {
		if d.At.After(end) {
			end = d.At
		}
	}
	span := max(end.Sub(t0).Seconds(), 1)
	x := func(t time.Time) float64 { return left + (t.Sub(t0).Seconds()/span)*(width-left-right) }

	// Throughput per bucket.
	n := int(math.Ceil(span/bucket.Seconds())) + 1
	counts := make([]float64, n)
	for _, d := range r.Deliveries {
		if i := int(d.At.Sub(t0) / bucket); i >= 0 && i < n {
			counts[i] += 1 / bucket.Seconds()
		}
	}
	maxRate := 1.0
	for _, c := range counts {
		maxRate = max(maxRate, c)
	}
	maxQ := 1.0
	for _, s := range r.Samples {
		maxQ = max(maxQ, float64(s.Queued))
	}
	maxRate, maxQ = niceCeil(maxRate), niceCeil(maxQ)

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" font-weight="bold">%s over %s: %s</text>`+"\n", left, xmlEsc(r.Scenario), r.Transport, xmlEsc(r.Fault))
	for _, top := range []int{top1, top2} {
		for _, w := range r.Windows {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#e8a0a0" opacity="0.45"/>`+"\n", x(w.Start), top, max(x(w.End)-x(w.Start), 1), panelH)
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", left, top, width-left-right, panelH)
	}
	axis := func(top int, maxV float64, label string) {
		for i := 0; i <= 4; i++ {
			v := maxV * float64(i) / 4
			y := float64(top+panelH) - float64(panelH)*float64(i)/4
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, width-right, y, y)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, compact(v))
		}
		fmt.Fprintf(&b, `<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>`+"\n", top+panelH/2, top+panelH/2, label)
	}
	axis(top1, maxRate, "delivered msgs/s")
	axis(top2, maxQ, "queued at sender")
	step := niceStep(span / 10)
	for s := 0.0; s <= span; s += step {
		xx := left + s/span*(width-left-right)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%gs</text>`+"\n", xx, top2+panelH+16, s)
	}
	// Lines.
	var pts []string
	for i, c := range counts {
		t := t0.Add(time.Duration(i)*bucket + bucket/2)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(t), float64(top1+panelH)-c/maxRate*panelH))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(pts, " "))
	pts = pts[:0]
	for _, s := range r.Samples {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.T), float64(top2+panelH)-float64(s.Queued)/maxQ*panelH))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#ff7f0e" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(pts, " "))
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#b03030">shaded: link blackholed</text>`+"\n", width-right-150, top1-6)
	b.WriteString("</svg>\n")
	return b.String()
}

func xmlEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func niceStep(v float64) float64 { return niceCeil(max(v, 0.1)) }

func compact(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", math.Round(v/1e5)/10)
	case v >= 1e3:
		return fmt.Sprintf("%gk", math.Round(v/1e2)/10)
	}
	return fmt.Sprintf("%g", math.Round(v*10)/10)
}
