package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
)

func TestPublicKeyRoundTrip(t *testing.T) {
	id := newIdentity(t, "east", "east-1")
	pub := id.Public()
	text := FormatPublicKey(pub)
	if !strings.HasPrefix(text, PublicKeyPrefix) {
		t.Fatalf("FormatPublicKey = %q, want prefix %q", text, PublicKeyPrefix)
	}
	if want := PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub); text != want {
		t.Fatalf("FormatPublicKey = %q, want %q", text, want)
	}
	got, err := ParsePublicKey("  " + text + "\n")
	if err != nil {
		t.Fatalf("ParsePublicKey(%q): %v", text, err)
	}
	if !bytes.Equal(got, pub) {
		t.Fatalf("round trip changed the key: got %x, want %x", got, pub)
	}
}

func TestParsePublicKeyErrors(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 31))
	long := base64.StdEncoding.EncodeToString(make([]byte, ed25519.PublicKeySize+1))
	for name, in := range map[string]string{
		"empty":      "",
		"no prefix":  base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"rsa prefix": "rsa:" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"bad base64": PublicKeyPrefix + "not*base64",
		"url base64": PublicKeyPrefix + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)),
		"too short":  PublicKeyPrefix + short,
		"too long":   PublicKeyPrefix + long,
	} {
		t.Run(name, func(t *testing.T) {
			if key, err := ParsePublicKey(in); err == nil {
				t.Fatalf("ParsePublicKey(%q) = %x, want an error", in, key)
			}
		})
	}
}
