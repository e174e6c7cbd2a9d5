package client

import "testing"

// FuzzParseAddr: any string either fails to parse or gives an address that
// prints back to an equal address.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"east/east-1/42", "a/b/0", "a/b/18446744073709551615", "a//1", "a/b/c/d", "", "/x/1", "a/b/-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s)
		if err != nil {
			return
		}
		b, err := ParseAddr(a.String())
		if err != nil || b != a {
			t.Fatalf("ParseAddr(%q) = %+v; its String %q parses to %+v, %v", s, a, a.String(), b, err)
		}
	})
}
