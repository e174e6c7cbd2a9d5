package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wandist/wandist/auth"
)

// maxConfigFile bounds the size of a configuration file.
const maxConfigFile = 16 << 20

// Load reads and parses the configuration file at path. A file that cannot
// be read gives an ErrorList whose *Error wraps the os error, so
// errors.Is(err, fs.ErrNotExist) works. A file holding a token (local.token,
// admin.token) that group or others may access is refused: its *Error wraps
// auth.ErrSecretPermissions.
func Load(path string) (*Config, error) {
	data, mode, err := readConfigFile(path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("cannot read config file: %v", causeOf(err)), Err: err}}
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	if secrets := c.secretKeys(); len(secrets) > 0 {
		if err := auth.CheckPrivateMode(path, mode, auth.ErrSecretPermissions); err != nil {
			return nil, ErrorList{{File: path, Err: err,
				Msg: fmt.Sprintf("holds %s, but has mode %#o, so group or others may read it; run: chmod 600 %s (a file owned by the daemon's user)",
					strings.Join(secrets, " and "), mode.Perm(), path)}}
		}
	}
	return c, nil
}

// readConfigFile reads at most maxConfigFile bytes of the file at path and
// returns them with the file's mode.
func readConfigFile(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, 0, err
	}
	if len(data) > maxConfigFile {
		return nil, 0, fmt.Errorf("%s: larger than %d bytes", path, maxConfigFile)
	}
	return data, fi.Mode(), nil
}

// secretKeys names the keys of c that hold a secret and are set.
func (c *Config) secretKeys() []string {
	var keys []string
	if c.Local.Token != "" {
		keys = append(keys, "local.token")
	}
	if c.Admin.Token != "" {
		keys = append(keys, "admin.token")
	}
	return keys
}

// Parse parses a configuration file's contents. path is used in messages
// and as the base of relative paths in the file (identity,
// public_key_file, local.socket); "" means relative to the working
// directory. Unset keys get their defaults, and the result is checked as
// Validate does. On error the Config is nil and the error is an ErrorList
// holding every problem found, each with its line and key path.
func Parse(data []byte, path string) (*Config, error) {
	r := newReporter(path)
	root, err := readDocument(data)
	if err != nil {
		err.File = path
		return nil, ErrorList{err}
	}
	dir := ""
	if path != "" {
		dir = filepath.Dir(path)
	}
	c := Default()
	c.Path = path
	r.decodeConfig(root, c, dir)
	c.Identity = resolvePath(dir, c.Identity)
	c.Local.Socket = resolvePath(dir, c.Local.Socket)
	c.Spool.Dir = resolvePath(dir, c.Spool.Dir)
	c.Spool.SecretFile = resolvePath(dir, c.Spool.SecretFile)
	c.resolveTrustPaths(dir)
	c.Gossip.SecretFile = resolvePath(dir, c.Gossip.SecretFile)
	c.fill()
	r.check(c)
	if err := r.result(); err != nil {
		return nil, err
	}
	return c, nil
}

// readDocument parses data as a single YAML document and returns its root
// node, or nil for an empty document.
func readDocument(data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(err, data)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(err, data)
		}
		return nil, &Error{Line: extra.Line, Msg: "more than one YAML document; a config file holds exactly one"}
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		root = doc.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Line: root.Line, Msg: fmt.Sprintf("the top level must be a mapping of keys (cluster, node, ...), got %s", describe(root))}
	}
	return root, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems start the messages of the YAML library's parser (as
// opposed to scanner) errors, whose line numbers it reports 0-based.
var parserProblems = []string{"did not find expected", "found duplicate", "found incompatible", "found undefined tag"}

// yamlError turns a YAML syntax error into an *Error with its line (at
// most the last line of data).
func yamlError(err error, data []byte) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{Msg: "bad YAML: " + msg, Err: err}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "bad YAML: " + m[2]
		for _, p := range parserProblems {
			if strings.HasPrefix(m[2], p) {
				e.Line++
				break
			}
		}
		e.Line = min(e.Line, bytes.Count(data, []byte("\n"))+1)
	}
	return e
}
