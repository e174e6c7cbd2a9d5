package daemon

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wandist/wandist/client"
	"github.com/wandist/wandist/configs"
	"github.com/wandist/wandist/impair"
)

// chromium returns the path of Debian's chromium. Without it the test
// skips, except under CI=true, where it fails: CI installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI=true: the status page must be tested in a real browser (.ci/run installs chromium as root)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the status page's browser test skips; with CI=true it fails instead")
	return ""
}

// artifactDir is where tests leave files to look at: $WANDIST_ARTIFACTS,
// or a temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WANDIST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pageTestToken is the admin token of the browser test's node.
const pageTestToken = "page-test-token"

// The status page in a real browser: it shows the link up and the group's
// member reachable; when the link is cut and messages queue, it shows the
// state change, the backlog and its sparkline rising, the alerts and the
// member unreachable, without a reload. A screenshot is left in artifactDir.
func TestStatusPageInBrowser(t *testing.T) {
	chrome := chromium(t)
	east, west, relay := relayedPairWithAdmin(t)
	mb := subscribe(t, west, "g", east)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.WindowSize(1280, 720))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	// The browser lives no longer than 3 minutes, should it hang.
	life, cancelLife := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelLife()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	// The first run starts the browser: no timeout on it (see chromedp.Run).
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+east.d.AdminAddr()+"/ui/?token="+pageTestToken)); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	if search, err := chromedp.Run(ctx, chromedp.Evaluate[string]("location.pathname + location.search")); err != nil || search != "/ui/" {
		t.Fatalf("after ?token=: at %q (%v), want /ui/ without the token", search, err)
	}
	// A mark that a reload would wipe: the page must change in place.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("window.notReloaded = true")); err != nil {
		t.Fatal(err)
	}
	row := `document.querySelector('#links tr[data-peer="west/west-1"]')`
	waitPage(t, ctx, "the link to west/west-1 shown up, over quic, with an RTT",
		`(r => r && r.querySelector('.state').textContent === 'up' && r.querySelector('.transport').textContent === 'quic'
			&& r.querySelector('.rtt').textContent !== '')(`+row+`)`)
	waitPage(t, ctx, "group g with its member on west/west-1 reachable",
		`(r => r && r.querySelector('.members').textContent === '1' && r.querySelector('.reachable').textContent === '1'
			&& r.querySelector('.nodes .reachable').textContent === 'west/west-1 (1)')(document.querySelector('#groups tr[data-group="g"]'))`)
	waitPage(t, ctx, "no alerts", `document.querySelectorAll('#alerts li').length === 0 && !document.getElementById('no-alerts').hidden`)

	spark := row + `.querySelector('svg.spark')`
	waitPage(t, ctx, "five seconds of history before the cut",
		`(s => s && +s.dataset.samples >= 5 && +s.dataset.max === 0)(`+spark+`)`)

	cutPath(t, relay, east)
	pub := connect(t, east)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			sendAsync(t, pub, client.Target{Addr: mb.Addr()}, []byte(strconv.Itoa(i)))
		}
		if err := pub.Flush(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// Two steps, so that the sparkline shows the backlog rise.
	send(0, 100)
	waitPage(t, ctx, "the link shown not up, with 100 queued, and the sparkline at 100",
		`(r => r && r.querySelector('.state').textContent !== 'up' && +r.querySelector('.queued').textContent === 100
			&& +r.querySelector('svg.spark').dataset.last === 100)(`+row+`)`)
	send(100, 200)
	waitPage(t, ctx, "200 queued, and the sparkline risen to 200 with a polyline",
		`(r => r && +r.querySelector('.queued').textContent === 200 && +r.querySelector('svg.spark').dataset.last === 200
			&& r.querySelector('svg.spark polyline') !== null)(`+row+`)`)
	waitPage(t, ctx, "a backlog alert and an unreachable alert for west/west-1",
		`document.querySelector('#alerts li[data-kind="backlog"][data-peer="west/west-1"]') !== null
			&& document.querySelector('#alerts li[data-kind="unreachable"][data-peer="west/west-1"]') !== null`)
	waitPage(t, ctx, "group g's member shown unreachable",
		`document.querySelector('#groups tr[data-group="g"] .nodes .unreachable') !== null`)

	if kept, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("window.notReloaded === true")); err != nil || !kept {
		t.Fatalf("the page was reloaded (%v): it must update in place", err)
	}

	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the screenshot is not a PNG: % x", png[:min(8, len(png))])
	}
	path := filepath.Join(artifactDir(t), "statuspage.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the status page with the link cut and a backlog: %s", path)
}

// waitPage waits up to 30s for the JavaScript expression to hold on the
// page; on timeout it fails with what the page shows.
func waitPage(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	_, err := chromedp.Run(pctx, chromedp.Poll[any](expr,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
		t.Fatalf("page never showed %s: %v\nthe page shows:\n%s", what, err, text)
	}
}

// relayedPairWithAdmin is relayedPair with east's admin listener on, behind
// pageTestToken, its backlog alert raised at 50 messages at once, and west
// unreachable past the grace after a second down.
func relayedPairWithAdmin(t *testing.T) (east, west *node, relay *impair.UDPRelay) {
	t.Helper()
	east = newNode(t, "quic", "east", "east-1")
	west = newNode(t, "quic", "west", "west-1")
	east.cfg.Admin.Listen, east.cfg.Admin.Token = "127.0.0.1:0", pageTestToken
	east.opts.Alerts = AlertOptions{Messages: 50, For: time.Millisecond}
	east.cfg.Groups.UnreachableGrace = time.Second
	west.cfg.Peers = []configs.Peer{peerOf(east, "quic", "", "accept")}
	west.start()
	relay, err := impair.NewUDPRelay("127.0.0.1:0", west.addr("quic"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	east.cfg.Peers = []configs.Peer{peerOf(west, "quic", relay.Addr(), "connect")}
	east.start()
	waitLink(t, east.d, "west", "west-1")
	return east, west, relay
}
