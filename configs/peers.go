package configs

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wandist/wandist/auth"
)

// maxKeyFile bounds how much of a public_key_file is read.
const maxKeyFile = 1 << 20

// decodePeers decodes the peers list onto c.Peers. Entries that are not
// mappings are reported and left out; r.peerKeys keeps the key path of each
// peer kept, so later checks name the right entry.
func (r *reporter) decodePeers(n *yaml.Node, c *Config, dir string) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		r.keyf("peers", "must be a list of peers, got %s", describe(n))
		return
	}
	for i, item := range n.Content {
		key := indexKey("peers", i)
		r.lines[key] = item.Line
		m := resolve(item)
		if isNull(m) || m.Kind != yaml.MappingNode {
			r.keyf(key, "must be a mapping with cluster, node, address, public_key ..., got %s", describe(m))
			continue
		}
		p := Peer{Line: item.Line, Buffer: c.Buffer}
		r.fields(m, key, peerKeys, func(name, key string, v *yaml.Node) {
			switch name {
			case "cluster":
				r.str(v, key, &p.Cluster)
			case "node":
				r.str(v, key, &p.Node)
			case "address":
				r.str(v, key, &p.Address)
			case "transport":
				r.str(v, key, &p.Transport)
			case "mode":
				r.str(v, key, &p.Mode)
			case "public_key":
				var s string
				r.str(v, key, &s)
				r.addKey(&p, key, s)
			case "public_keys":
				r.decodeKeyList(v, key, &p)
			case "public_key_file":
				var s string
				r.str(v, key, &s)
				r.readKeyFile(&p, key, s, dir)
			case "buffer":
				r.decodeBuffer(v, key, &p.Buffer)
			}
		})
		c.Peers = append(c.Peers, p)
		r.peerKeys = append(r.peerKeys, key)
	}
}

// addKey parses one public key in text form and adds it to p.
func (r *reporter) addKey(p *Peer, key, s string) {
	if s == "" {
		return
	}
	pub, err := auth.ParsePublicKey(s)
	if err != nil {
		if !r.reported[key] {
			r.add(&Error{Line: r.lineOf(key), Key: key, Msg: fmt.Sprintf("bad public key: %v", err), Err: err})
		}
		return
	}
	appendKey(p, pub)
}

// appendKey adds pub to p unless p already has it.
func appendKey(p *Peer, pub ed25519.PublicKey) {
	for _, k := range p.PublicKeys {
		if k.Equal(pub) {
			return
		}
	}
	p.PublicKeys = append(p.PublicKeys, pub)
}

func (r *reporter) decodeKeyList(n *yaml.Node, path string, p *Peer) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		r.keyf(path, "must be a list of public keys, got %s", describe(n))
		return
	}
	for i, item := range n.Content {
		key := indexKey(path, i)
		r.lines[key] = item.Line
		var s string
		r.str(item, key, &s)
		if s == "" {
			r.keyf(key, "empty public key")
		}
		r.addKey(p, key, s)
	}
}

// readKeyFile adds the keys in the file name (relative to dir) to p. The
// file holds one key per line; blank lines and lines starting with # are
// ignored, and so is anything after the key on its line.
func (r *reporter) readKeyFile(p *Peer, key, name, dir string) {
	if name == "" {
		return
	}
	line := r.lineOf(key)
	data, err := readLimited(resolvePath(dir, name), maxKeyFile, true)
	if err != nil {
		r.add(&Error{Line: line, Key: key, Msg: fmt.Sprintf("cannot read public key file %s: %v", name, causeOf(err)), Err: err})
		return
	}
	if auth.HoldsPrivateKey(data) {
		// Say so, and nothing of what it holds.
		r.add(&Error{Line: line, Key: key, Err: auth.ErrPrivateKey,
			Msg: fmt.Sprintf("%s holds a private key; public_key_file must hold the peer's public key (the %s... line its `wandistd keygen` printed), and a private key must stay on its node", name, auth.PublicKeyPrefix)})
		return
	}
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxKeyFile)
	for ln := 1; sc.Scan(); ln++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		pub, err := auth.ParsePublicKey(fields[0])
		if err != nil {
			r.add(&Error{Line: line, Key: key, Msg: fmt.Sprintf("%s:%d: bad public key: %v", name, ln, err), Err: err})
			continue
		}
		found++
		appendKey(p, pub)
	}
	if err := sc.Err(); err != nil { // bufio.ErrTooLong and the like: no content
		r.at(line, key, "reading public key file %s: %v", name, err)
		return
	}
	if found == 0 && !r.reported[key] {
		r.at(line, key, "public key file %s holds no public key", name)
	}
}

// readLimited reads at most limit bytes of the file at path. With
// regularOnly, anything but a regular file (a FIFO, a device) is refused
// before it is opened.
func readLimited(path string, limit int64, regularOnly bool) ([]byte, error) {
	if regularOnly {
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file", path)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

// causeOf strips the path from an *fs.PathError, which the message names
// already.
func causeOf(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// resolvePath makes p absolute, relative to dir ("" meaning the working
// directory). An empty p stays empty.
func resolvePath(dir, p string) string {
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}
