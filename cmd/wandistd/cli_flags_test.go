package main

import (
	"crypto/ed25519"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wandist/wandist/auth"
)

// Help goes to stdout with exit 0, for every command and each way to ask.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errOut := runCLI(args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "usage: wandistd COMMAND") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	for name := range commands {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			code, out, errOut := runCLI(args...)
			if code != 0 || errOut != "" || !strings.Contains(out, "usage: wandistd "+name) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
		}
	}
	// Where the daemon is found is said in the help of the commands that need it.
	for _, name := range []string{"pub", "sub", "req", "serve", "groups"} {
		_, out, _ := runCLI(name, "--help")
		for _, want := range []string{"-c file", "--socket, $WANDIST_SOCKET, local.socket in -c FILE", "--token, $WANDIST_TOKEN, local.token in -c FILE"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s --help lacks %q:\n%s", name, want, out)
			}
		}
	}
	for _, name := range []string{"status", "reload"} {
		_, out, _ := runCLI(name, "--help")
		for _, want := range []string{"--admin, $WANDIST_ADMIN, admin.listen in -c FILE, else 127.0.0.1:7103", "--token, $WANDIST_ADMIN_TOKEN, admin.token in -c FILE"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s --help lacks %q:\n%s", name, want, out)
			}
		}
	}
}

// Every usage error is one line on stderr, in one style, with exit 2.
func TestUsageErrorStyle(t *testing.T) {
	style := regexp.MustCompile(`^wandistd( [a-z ]+)?: .+; see 'wandistd( [a-z ]+)? --help'\n$`)
	for _, args := range [][]string{
		{"nope"}, {"pub"}, {"pub", "--bogus"}, {"pub", "--group", "g", "a", "b"}, {"pub", "--group", "g", "--strategy", "fastest"},
		{"pub", "--group", "g", "--strategy", "broadcast", "--key", "k"}, {"pub", "--group", "g", "--strategy", "key"},
		{"sub", "--group", "g", "--count", "x"}, {"sub", "--group", "g", "--partitions", "4"}, {"sub", "--group", "g", "--own", "1"},
		{"sub", "--group", "g", "--partitions", "4", "--own", "9"}, {"req", "--group", "g"}, {"req", "--group", "g", "x", "--timeout", "0s"},
		{"keygen"}, {"keygen", "-o", "k", "--public", "k"}, {"keygen", "-o", "-", "--json"}, {"status", "extra"},
		{"version", "x"}, {"bench"}, {"bench", "--from", "a", "--to", "b", "--size", "3"}, {"config"}, {"ca", "sign"}, {"ca", "init"}, {"run"},
	} {
		code, out, errOut := runCLI(args...)
		m := style.FindStringSubmatch(errOut)
		if code != 2 || out != "" || m == nil || m[1] != m[2] {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line: wandistd CMD: WHAT; see 'wandistd CMD --help'", args, code, out, errOut)
		}
	}
}

// Flags may follow the positional arguments; after -- everything is positional.
func TestFlagsAfterPositionals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		to   time.Duration
	}{
		{[]string{"--group", "g", "hello", "--timeout", "1s"}, []string{"hello"}, time.Second},
		{[]string{"hello", "--group", "g", "--timeout=2s"}, []string{"hello"}, 2 * time.Second},
		{[]string{"--group", "g", "a", "--timeout", "3s", "b"}, []string{"a", "b"}, 3 * time.Second},
		{[]string{"--group", "g", "--", "--timeout", "1s"}, []string{"--timeout", "1s"}, 5 * time.Second},
		{[]string{"--group", "g", "x", "--", "-y"}, []string{"x", "-y"}, 5 * time.Second},
	} {
		fs := newFlags("req", "", nil)
		group := fs.String("group", "", "")
		timeout := fs.Duration("timeout", 5*time.Second, "")
		if err := parse(fs, tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if *group != "g" || *timeout != tc.to || fmt.Sprint(fs.Args()) != fmt.Sprint(tc.pos) {
			t.Errorf("%v: group %q timeout %v args %q; want g %v %q", tc.args, *group, *timeout, fs.Args(), tc.to, tc.pos)
		}
	}
}

// writeEndpointConfig writes a config naming a socket, an admin listener
// and both tokens (mode 0600, as tokens require).
func writeEndpointConfig(t *testing.T, dir, admin string) string {
	t.Helper()
	if code, _, errOut := runCLI("keygen", "-o", filepath.Join(dir, "n.key")); code != 0 {
		t.Fatal(errOut)
	}
	cfg := filepath.Join(dir, "n.yaml")
	body := "cluster: east\nnode: east-1\nidentity: n.key\nlocal: { socket: cfg.sock, token: cfgLocalTok }\n"
	if admin != "" {
		body += "admin: { listen: '" + admin + "', token: cfgAdminTok }\n"
	}
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Where the socket, the admin listener and their tokens come from: the
// flag, else the environment, else the -c config, else the default.
func TestEndpointPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := writeEndpointConfig(t, dir, ":7555")
	resolve := func(admin bool, args ...string) (string, string) {
		t.Helper()
		fs := newFlags("x", "", nil)
		var ep *endpoint
		if admin {
			ep = adminFlags(fs)
		} else {
			ep = socketFlags(fs)
		}
		if err := parse(fs, args); err != nil {
			t.Fatal(err)
		}
		addr, tok, _, err := ep.resolve()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return addr, tok
	}
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: got %q, want %q", what, got, want)
		}
	}
	for _, k := range []string{envSocket, envToken, envAdmin, envAdminToken} {
		t.Setenv(k, "")
	}
	// Defaults.
	s, tok := resolve(false)
	check("default socket", s+tok, "") // the SDK's default
	a, tok := resolve(true)
	check("default admin", a+tok, defaultAdmin)
	// The config.
	s, tok = resolve(false, "-c", cfg)
	check("config socket", s, filepath.Join(dir, "cfg.sock"))
	check("config token", tok, "cfgLocalTok")
	a, tok = resolve(true, "-c", cfg)
	check("config admin", a, "127.0.0.1:7555")
	check("config admin token", tok, "cfgAdminTok")
	// The environment beats the config.
	t.Setenv(envSocket, "/env.sock")
	t.Setenv(envToken, "envTok")
	t.Setenv(envAdmin, "127.0.0.2:1")
	t.Setenv(envAdminToken, "envAdminTok")
	s, tok = resolve(false, "-c", cfg)
	check("env socket", s+" "+tok, "/env.sock envTok")
	a, tok = resolve(true, "-c", cfg)
	check("env admin", a+" "+tok, "127.0.0.2:1 envAdminTok")
	// The flag beats both.
	s, tok = resolve(false, "-c", cfg, "--socket", "/flag.sock", "--token", "flagTok")
	check("flag socket", s+" "+tok, "/flag.sock flagTok")
	a, tok = resolve(true, "--admin", "127.0.0.3:2", "-c", cfg, "--token", "flagTok")
	check("flag admin", a+" "+tok, "127.0.0.3:2 flagTok")

	// A config without admin.listen: status says so.
	t.Setenv(envAdmin, "")
	noAdmin := writeEndpointConfig(t, t.TempDir(), "")
	code, _, errOut := runCLI("status", "-c", noAdmin)
	if code != 1 || !strings.Contains(errOut, "admin.listen is not set") {
		t.Errorf("status -c without admin.listen: exit %d, %q", code, errOut)
	}
	code, _, errOut = runCLI("pub", "-c", filepath.Join(dir, "missing.yaml"), "--group", "g", "x")
	if code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("pub -c with a missing file: exit %d, %q", code, errOut)
	}
}

// keygen -o - writes the private key to stdout (no file named -), and
// keygen --public prints a key file's public key, as text or JSON.
func TestKeygenStdoutAndPublic(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, out, errOut := runCLI("keygen", "-o", "-")
	if code != 0 {
		t.Fatalf("keygen -o -: %d %s", code, errOut)
	}
	if _, err := os.Lstat(filepath.Join(dir, "-")); err == nil {
		t.Fatal("keygen -o - created a file named -")
	}
	if b, rest := pem.Decode([]byte(out)); b == nil || b.Type != "PRIVATE KEY" || len(rest) != 0 {
		t.Fatalf("keygen -o - printed %q, want one PEM private key", out)
	}
	pubLine := strings.TrimSpace(errOut)
	if _, err := auth.ParsePublicKey(pubLine); err != nil {
		t.Fatalf("keygen -o - said %q on stderr, want the public key line: %v", errOut, err)
	}
	os.WriteFile("k.key", []byte(out), 0o600)
	code, out, errOut = runCLI("keygen", "--public", "k.key")
	if code != 0 || out != pubLine+"\n" {
		t.Fatalf("keygen --public: exit %d, %q %q; want %q", code, out, errOut, pubLine)
	}
	code, out, _ = runCLI("keygen", "--public", "k.key", "--json")
	var j struct {
		PublicKey string `json:"public_key"`
		File      string `json:"file"`
	}
	if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil || j.PublicKey != pubLine || j.File != "k.key" {
		t.Fatalf("keygen --public --json: exit %d, %q (%v)", code, out, err)
	}
	code, out, _ = runCLI("keygen", "-o", "new.key", "--json")
	if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil || j.File != "new.key" {
		t.Fatalf("keygen -o --json: exit %d, %q (%v)", code, out, err)
	}
	if key, err := auth.LoadKeyFile("new.key"); err != nil || auth.FormatPublicKey(key.Public().(ed25519.PublicKey)) != j.PublicKey {
		t.Fatalf("keygen -o --json: the key file does not match %q (%v)", j.PublicKey, err)
	}
	if code, _, errOut = runCLI("keygen", "--public", "missing.key"); code != 1 || !strings.Contains(errOut, "missing.key") {
		t.Errorf("keygen --public of a missing file: exit %d, %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, errOut := runCLI("version")
	if code != 0 || !strings.HasPrefix(out, "wandistd ") || !strings.Contains(out, runtime.Version()) || strings.Count(out, "\n") != 1 {
		t.Fatalf("version: exit %d, %q %q", code, out, errOut)
	}
	if _, out2, _ := runCLI("--version"); out2 != out {
		t.Errorf("--version printed %q, version %q", out2, out)
	}
	code, out, _ = runCLI("version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Go != runtime.Version() || v.Version == "" || v.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("version --json: exit %d, %q (%v)", code, out, err)
	}
	// The binary built from this checkout carries its VCS revision, unless
	// built without VCS information.
	bin, _ := run(t, nil, "version", "--json")
	if err := json.Unmarshal([]byte(bin), &v); err != nil || v.Go == "" {
		t.Fatalf("wandistd version --json: %q (%v)", bin, err)
	}
	t.Logf("built binary: %s", bin)
}

// A pipe or a file is not a terminal: no escape codes go to it.
func TestPipeIsNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, out := range map[string]io.Writer{"pipe": w, "file": f, "buffer": new(strings.Builder)} {
		if isTerminal(out) {
			t.Errorf("a %s is taken for a terminal", name)
		}
	}
}
