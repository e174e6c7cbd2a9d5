// Package hostile builds the traffic of attacks on a wandist node, for the
// tests that show its defences and for the hostile-load run
// (docs/security.md). Nothing in the daemon uses it.
package hostile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
)

// quicV1Salt is QUIC version 1's initial salt (RFC 9001 5.2).
var quicV1Salt = []byte{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
	0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a}

// InitialSize is the size of the datagrams QUICInitial makes: the least a
// server accepts for a client's first packet.
const InitialSize = 1200

// QUICInitial is a client's first QUIC v1 packet for a new connection with
// a random 8-byte destination connection ID, correctly protected with the
// Initial keys (which anyone can derive: no private key, no asymmetric
// cryptography), carrying the start of a ClientHello that never ends. A
// server that creates a connection for it waits for the rest until its
// handshake times out. The flood this makes costs the sender one AES
// operation per packet.
func QUICInitial() []byte {
	dcid := make([]byte, 8)
	rand.Read(dcid)
	key, iv, hp := initialKeys(dcid)

	// The start of a ClientHello announcing 1024 bytes, of which 64 come.
	hello := make([]byte, 4+64)
	hello[0], hello[2], hello[3] = 1, 0x04, 0x00
	rand.Read(hello[4:])
	const pnLen = 4
	payload := []byte{0x06, 0x00, 0x40 | byte(len(hello)>>8), byte(len(hello))} // CRYPTO, offset 0, length
	payload = append(payload, hello...)

	hdr := []byte{0xc0 | (pnLen - 1), 0, 0, 0, 1, byte(len(dcid))}
	hdr = append(hdr, dcid...)
	hdr = append(hdr, 0, 0) // no source connection ID, no token
	const tagLen = 16
	// Pad the payload so that the datagram is InitialSize bytes.
	padded := InitialSize - len(hdr) - 2 - pnLen - tagLen
	payload = append(payload, make([]byte, padded-len(payload))...)
	length := pnLen + len(payload) + tagLen
	hdr = append(hdr, 0x40|byte(length>>8), byte(length))
	pnOffset := len(hdr)
	hdr = append(hdr, 0, 0, 0, 0) // packet number 0

	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	pkt := aead.Seal(hdr, iv, payload, hdr) // packet number 0: the nonce is the IV

	// Header protection.
	hpBlock, _ := aes.NewCipher(hp)
	var mask [16]byte
	hpBlock.Encrypt(mask[:], pkt[pnOffset+4:pnOffset+4+16])
	pkt[0] ^= mask[0] & 0x0f
	for i := range pnLen {
		pkt[pnOffset+i] ^= mask[1+i]
	}
	return pkt
}

// initialKeys derives the client's Initial packet protection keys for dcid.
func initialKeys(dcid []byte) (key, iv, hp []byte) {
	initial, _ := hkdf.Extract(sha256.New, dcid, quicV1Salt)
	client := expandLabel(initial, "client in", 32)
	return expandLabel(client, "quic key", 16), expandLabel(client, "quic iv", 12), expandLabel(client, "quic hp", 16)
}

// expandLabel is TLS 1.3's HKDF-Expand-Label with an empty context.
func expandLabel(secret []byte, label string, n int) []byte {
	full := "tls13 " + label
	info := binary.BigEndian.AppendUint16(nil, uint16(n))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0)
	out, _ := hkdf.Expand(sha256.New, secret, string(info), n)
	return out
}
