package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// pageRequest requests path from n's admin listener with the given headers,
// not following redirects.
func pageRequest(t *testing.T, n *node, method, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.d.AdminAddr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// The page and its JSON need the admin token: by bearer header, or by the
// cookie that ?token= sets once. The cookie opens the page only, not the API.
func TestStatusPageNeedsToken(t *testing.T) {
	east, west := pairWith(t, "mem", func(east, _ *node) {
		east.cfg.Admin.Listen, east.cfg.Admin.Token = "127.0.0.1:0", "s3cret"
	})
	subscribe(t, west, "g", east)
	failures := func() float64 {
		return testutil.ToFloat64(east.d.metrics.adminAuthFailures.WithLabelValues(adminMissingToken)) +
			testutil.ToFloat64(east.d.metrics.adminAuthFailures.WithLabelValues(adminBadToken))
	}
	refused := []struct {
		what, method, path string
		header             map[string]string
	}{
		{"page, no credential", "GET", "/ui/", nil},
		{"JSON, no credential", "GET", "/ui/state.json", nil},
		{"script, no credential", "GET", "/ui/app.js", nil},
		{"JSON, bad bearer", "GET", "/ui/state.json", map[string]string{"Authorization": "Bearer wrong"}},
		{"page, bad ?token=", "GET", "/ui/?token=wrong", nil},
		{"JSON, the token itself as cookie", "GET", "/ui/state.json", map[string]string{"Cookie": statusPageCookie + "=s3cret"}},
		{"JSON, a forged cookie", "GET", "/ui/state.json", map[string]string{"Cookie": statusPageCookie + "=" + pageCredential("other")}},
	}
	for _, c := range refused {
		before := failures()
		resp, body := pageRequest(t, east, c.method, c.path, c.header)
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "west-1") || strings.Contains(body, "<script") {
			t.Errorf("%s: %s %q, want 401 without content", c.what, resp.Status, body)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("%s: set a cookie %v", c.what, resp.Cookies())
		}
		if got := failures(); got != before+1 {
			t.Errorf("%s: auth failures %v -> %v, want one more", c.what, before, got)
		}
	}

	// ?token= once: a cookie, and on to the same URL without the token.
	resp, _ := pageRequest(t, east, "GET", "/ui/?token=s3cret&x=1", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/?x=1" {
		t.Fatalf("?token=: %s to %q, want 303 to /ui/?x=1", resp.Status, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("?token= set cookies %v, want one", cookies)
	}
	ck := cookies[0]
	if ck.Name != statusPageCookie || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/ui/" ||
		strings.Contains(ck.Value, "s3cret") {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, path /ui/, without the token", ck)
	}
	withCookie := map[string]string{"Cookie": ck.Name + "=" + ck.Value}

	resp, body := pageRequest(t, east, "GET", "/ui/", withCookie)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `src="app.js"`) ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("page with the cookie: %s %v %.200q", resp.Status, resp.Header, body)
	}
	resp, body = pageRequest(t, east, "GET", "/ui/state.json", withCookie)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("state.json with the cookie: %s %q", resp.Status, body)
	}
	checkPageState(t, body)
	resp, body = pageRequest(t, east, "GET", "/ui/state.json", map[string]string{"Authorization": "Bearer s3cret"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("state.json with the bearer token: %s %q", resp.Status, body)
	}
	checkPageState(t, body)

	// The page's cookie does not open the API.
	for _, c := range []struct{ method, path string }{{"GET", "/v1/status"}, {"GET", "/metrics"}, {"POST", "/v1/reload"}} {
		if resp, _ := pageRequest(t, east, c.method, c.path, withCookie); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s with the page's cookie: %s, want 401", c.method, c.path, resp.Status)
		}
	}
}

// checkPageState checks east's state.json: the link to west up, and
// group g's member on west reachable.
func checkPageState(t *testing.T, body string) {
	t.Helper()
	var st pageState
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("state.json does not decode: %v: %.300s", err, body)
	}
	if st.Cluster != "east" || st.Node != "east-1" || len(st.Links) != 1 || st.Alerts == nil {
		t.Fatalf("state: %+v", st)
	}
	l := st.Links[0]
	if l.Peer != "west/west-1" || l.State != StateUp || l.Transport != "mem" || l.RTTSeconds < 0 || l.History == nil {
		t.Fatalf("link: %+v", l)
	}
	if len(st.Groups) != 1 || st.Groups[0].Name != "g" || st.Groups[0].Members != 1 || st.Groups[0].Reachable != 1 ||
		len(st.Groups[0].Nodes) != 1 || st.Groups[0].Nodes[0] != (pageGroupNode{Node: "west/west-1", Members: 1, Reachable: true}) {
		t.Fatalf("groups: %+v", st.Groups)
	}
}

// Without admin.token the page is open, as the read-only API is.
func TestStatusPageWithoutToken(t *testing.T) {
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Admin.Listen = "127.0.0.1:0"
	n.start()
	for _, path := range []string{"/ui/", "/ui/state.json", "/ui/app.js", "/ui/style.css"} {
		if resp, body := pageRequest(t, n, "GET", path, nil); resp.StatusCode != http.StatusOK || body == "" {
			t.Errorf("%s: %s", path, resp.Status)
		}
	}
	if resp, body := pageRequest(t, n, "GET", "/ui/state.json", nil); !strings.Contains(body, `"links": []`) ||
		!strings.Contains(body, `"groups": []`) || !strings.Contains(body, `"alerts": []`) {
		t.Errorf("empty lists are not [] in %s: %s", resp.Status, body)
	}
	if resp, _ := pageRequest(t, n, "POST", "/ui/state.json", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST state.json: %s, want 405", resp.Status)
	}
}
