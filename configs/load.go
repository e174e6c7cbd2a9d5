package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxConfigFile bounds the size of a configuration file.
const maxConfigFile = 16 << 20

// Load reads and parses the configuration file at path. A file that cannot
// be read gives an ErrorList whose *Error wraps the os error, so
// errors.Is(err, fs.ErrNotExist) works.
func Load(path string) (*Config, error) {
	data, err := readLimited(path, maxConfigFile, false)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("cannot read config file: %v", causeOf(err)), Err: err}}
	}
	return Parse(data, path)
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
