package hostile

import (
	"encoding/hex"
	"testing"
)

// TestInitialKeys checks the key derivation against RFC 9001 appendix A.1.
func TestInitialKeys(t *testing.T) {
	dcid, _ := hex.DecodeString("8394c8f03e515708")
	key, iv, hp := initialKeys(dcid)
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"key", key, "1f369613dd76d5467730efcbe3b1a22d"},
		{"iv", iv, "fa044b2f42a3fd3b46fb255c"},
		{"hp", hp, "9f50449e04a0e810283a1e9933adedd2"},
	} {
		if hex.EncodeToString(c.got) != c.want {
			t.Errorf("client %s = %x, want %s", c.name, c.got, c.want)
		}
	}
	if n := len(QUICInitial()); n != InitialSize {
		t.Errorf("Initial of %d bytes, want %d", n, InitialSize)
	}
}
