package configs

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"65536", 65536},
		{"100B", 100},
		{"512KiB", 512 << 10},
		{"64MiB", 64 << 20},
		{"64 MiB", 64 << 20},
		{" 64mib ", 64 << 20},
		{"1GiB", 1 << 30},
		{"2TiB", 2 << 40},
		{"10MB", 10_000_000},
		{"1KB", 1000},
		{"3GB", 3_000_000_000},
		{"1TB", 1e12},
		{"1.5GiB", 3 << 29},
		{"0.5KiB", 512},
		{"9223372036854775807", 1<<63 - 1},
		{"8388607TiB", 8388607 << 40},
	} {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSizeErrors(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"", "non-negative number"},
		{"MiB", "non-negative number"},
		{"-1", "non-negative number"},
		{"-1MiB", "non-negative number"},
		{".5MiB", "non-negative number"},
		{"5.MiB", "non-negative number"},
		{"1.2.3", "non-negative number"},
		{"1e6", "unknown unit"},
		{"64M", "unknown unit"},
		{"64 MiBs", "unknown unit"},
		{"64XB", "unknown unit"},
		{"0.3B", "whole number"},
		{"1.0001KiB", "whole number"},
		{"9223372036854775808", "too large"},
		{"8388608TiB", "too large"},
		{strings.Repeat("9", 50), "too large"},
	} {
		got, err := ParseSize(tc.in)
		if err == nil {
			t.Errorf("ParseSize(%q) = %d, want error", tc.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseSize(%q) error %q lacks %q", tc.in, err, tc.msg)
		}
	}
}

// Sizes in the file accept YAML integers and size strings alike.
func TestSizeKeys(t *testing.T) {
	c := mustParse(t, base+"buffer: {max_bytes: 0x100000}\nlink: {max_frame_size: \"8KiB\"}\n")
	if c.Buffer.MaxBytes != 1<<20 || c.Link.MaxFrameSize != 8<<10 {
		t.Errorf("max_bytes %d max_frame_size %d", c.Buffer.MaxBytes, c.Link.MaxFrameSize)
	}
}

func TestSuggest(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"adress", "address"},
		{"Address", "address"},
		{"public-key", "public_key"},
		{"publicKeyFile", "public_key_file"},
		{"nod", "node"},
		{"xyz", ""},
		{"colour", ""},
	} {
		if got := suggest(tc.in, peerKeys); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
