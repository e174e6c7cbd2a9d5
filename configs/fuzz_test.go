package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzParse checks that Parse never panics and that it returns either a
// Config that validates or an ErrorList, never both or neither.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"east-1.yaml", "west-1.yaml"} {
		data, err := os.ReadFile(filepath.Join("examples", "two-cluster", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range errorCases {
		f.Add([]byte(tc.text))
	}
	_, key := newKey(f)
	f.Add([]byte("cluster: a\nnode: b\nidentity: k\npeers: [{cluster: c, node: d, public_key: " + key + "}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("peers: &p [{buffer: *p}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "")
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c != nil, err)
		}
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T is not a non-empty ErrorList", err)
			}
			_ = err.Error()
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
	})
}

// FuzzParseSize: sizes parse to non-negative byte counts that parse back.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"65536", "64MiB", "512 KiB", "1.5GiB", "10MB", "0.5B", "9223372036854775807", "9223372036854775808", "1.", "kib", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if again, err := ParseSize(strconv.FormatInt(n, 10)); err != nil || again != n {
			t.Fatalf("%d does not parse back: %d %v", n, again, err)
		}
	})
}
