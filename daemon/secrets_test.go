package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wandist/wandist/auth"
	"github.com/wandist/wandist/configs"
)

// leak returns the first 8 consecutive characters of secret found in out,
// or "" when none is.
func leak(secret, out string) string {
	for i := 0; i+8 <= len(secret); i++ {
		if w := secret[i : i+8]; strings.Contains(out, w) {
			return w
		}
	}
	return ""
}

// adminDo sends method path to n's admin listener with token (none if "")
// and returns the status and body.
func adminDo(t *testing.T, n *node, method, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.d.AdminAddr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Without admin.token the admin listener, which every local user can
// reach, serves the read-only endpoints only: reload and pprof answer 403,
// saying how to turn them on, and each refusal is counted; one line is
// logged for a burst of them.
func TestAdminWithoutTokenIsReadOnly(t *testing.T) {
	var logs syncBuffer
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Admin.Listen = "127.0.0.1:0"
	n.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	reloads := 0
	n.opts.Source = func() (*configs.Config, error) { reloads++; return n.cfg, nil }
	n.start()
	for _, path := range []string{"/metrics", "/v1/status", "/v1/links", "/v1/backlog", "/v1/groups", "/healthz", "/readyz"} {
		if code, body := adminDo(t, n, http.MethodGet, path, ""); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	refused := []struct{ method, path string }{
		{http.MethodPost, "/v1/reload"}, {http.MethodGet, "/v1/reload"},
		{http.MethodGet, "/debug/pprof/"}, {http.MethodGet, "/debug/pprof/goroutine?debug=1"}, {http.MethodGet, "/debug/pprof/profile"},
	}
	for _, r := range refused {
		code, body := adminDo(t, n, r.method, r.path, "")
		if code != http.StatusForbidden || !strings.Contains(body, "set admin.token to enable reload/pprof over HTTP; SIGHUP reloads without it") {
			t.Errorf("%s %s without admin.token: %d %q, want 403", r.method, r.path, code, body)
		}
	}
	if reloads != 0 {
		t.Errorf("the config was read again %d times", reloads)
	}
	if got := testutil.ToFloat64(n.d.metrics.adminAuthFailures.WithLabelValues(adminTokenNotSet)); got != float64(len(refused)) {
		t.Errorf("wandist_admin_auth_failures_total{reason=token_not_set} = %v, want %d", got, len(refused))
	}
	if got := strings.Count(logs.String(), "admin request refused"); got != 1 {
		t.Errorf("%d log lines for %d refusals, want 1:\n%s", got, len(refused), logs.String())
	}
}

// With admin.token every request needs it; a missing or wrong one is
// refused (401), counted by reason, and never logged.
func TestAdminTokenFailuresCounted(t *testing.T) {
	var logs syncBuffer
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Admin.Listen, n.cfg.Admin.Token = "127.0.0.1:0", "Xk29vQp7LmN4tR8w"
	n.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	n.opts.Source = func() (*configs.Config, error) { return n.cfg, nil }
	n.start()
	for _, path := range []string{"/v1/status", "/metrics", "/healthz"} {
		if code, _ := adminDo(t, n, http.MethodGet, path, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", path, code)
		}
	}
	const wrong = "Wq81nBz5TcY3pK6d"
	if code, _ := adminDo(t, n, http.MethodPost, "/v1/reload", wrong); code != http.StatusUnauthorized {
		t.Errorf("POST /v1/reload with a wrong token: %d, want 401", code)
	}
	if code, body := adminDo(t, n, http.MethodPost, "/v1/reload", n.cfg.Admin.Token); code != http.StatusOK || !strings.Contains(body, "reloaded") {
		t.Errorf("POST /v1/reload with the token: %d %q", code, body)
	}
	if code, _ := adminDo(t, n, http.MethodGet, "/debug/pprof/", n.cfg.Admin.Token); code != http.StatusNotFound {
		t.Errorf("pprof off, with the token: %d, want 404", code)
	}
	m := n.d.metrics.adminAuthFailures
	if a, b := testutil.ToFloat64(m.WithLabelValues(adminMissingToken)), testutil.ToFloat64(m.WithLabelValues(adminBadToken)); a != 3 || b != 1 {
		t.Errorf("admin auth failures: missing_token %v, bad_token %v; want 3 and 1", a, b)
	}
	out := logs.String()
	if strings.Count(out, "admin request refused") != 1 || strings.Contains(out, wrong[:8]) || strings.Contains(out, n.cfg.Admin.Token[:8]) {
		t.Errorf("logs:\n%s", out)
	}
}

// public_key_file pointing at a private key: the reload is refused, and
// neither its HTTP answer nor the ERROR log line holds any part of the key.
func TestReloadErrorNeverEchoesKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "west-1.key")
	if _, err := auth.GenerateKeyFile(keyFile, false); err != nil {
		t.Fatal(err)
	}
	pemText, _ := os.ReadFile(keyFile)
	var body string
	for _, l := range strings.Split(string(pemText), "\n") {
		if !strings.HasPrefix(l, "-----") {
			body += l
		}
	}
	cfgFile := filepath.Join(dir, "east-1.yaml")
	yaml := fmt.Sprintf("cluster: east\nnode: east-1\nidentity: east-1.key\nadmin: {listen: 127.0.0.1:0, token: s3cret}\n"+
		"peers:\n  - {cluster: west, node: west-1, address: \"west:1\", public_key_file: %s}\n", keyFile)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Admin.Listen, n.cfg.Admin.Token = "127.0.0.1:0", "s3cret"
	n.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	n.opts.Source = func() (*configs.Config, error) { return configs.Load(cfgFile) }
	n.start()
	code, answer := adminDo(t, n, http.MethodPost, "/v1/reload", "s3cret")
	if w := leak(body, answer); w != "" {
		t.Errorf("the HTTP answer holds part of the private key (%q): %s", w, answer)
	}
	if code != http.StatusBadRequest || !strings.Contains(answer, "west-1.key holds a private key; public_key_file must hold the peer's public key") {
		t.Errorf("POST /v1/reload: %d %q", code, answer)
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR msg=\"reload refused") || leak(body, out) != "" {
		t.Errorf("the ERROR log holds part of the private key (%q), or no ERROR line:\n%s", leak(body, out), out)
	}
}

// spool.secret_file is refused when group or others may read it, with the
// file, its mode and the fix, and none of its bytes; at 0600 it is used.
func TestSpoolSecretFileMode(t *testing.T) {
	dir := t.TempDir()
	const secret = "Hb7wQz2Lk9Vx4Nc8Rt5Mp3Jd"
	secretFile := filepath.Join(dir, "spool.secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, "mem", "east", "east-1")
	n.cfg.Spool.Dir, n.cfg.Spool.SecretFile = filepath.Join(dir, "spool"), secretFile
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(secretFile, mode)
		d, err := New(n.cfg, n.opts)
		if err == nil {
			d.Close()
			t.Fatalf("mode %#o: the daemon started", mode)
		}
		msg := err.Error()
		if !errors.Is(err, auth.ErrSecretPermissions) || !strings.Contains(msg, "spool.secret_file") || !strings.Contains(msg, fmt.Sprintf("mode %#o", mode)) ||
			!strings.Contains(msg, "chmod 600 "+secretFile) || leak(secret, msg) != "" {
			t.Errorf("mode %#o: %v", mode, err)
		}
	}
	os.WriteFile(secretFile, []byte(secret[:10]), 0o600)
	os.Chmod(secretFile, 0o600)
	if _, err := New(n.cfg, n.opts); err == nil || !strings.Contains(err.Error(), "10 bytes, want at least 16") || leak(secret, err.Error()) != "" {
		t.Errorf("a short secret: %v", err)
	}
	os.WriteFile(secretFile, []byte(secret), 0o600)
	n.start()
}
