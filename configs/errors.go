package configs

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a configuration. It prints as
//
//	File:Line: Key: Msg
//
// leaving out the parts that are unknown (Line is 0 for a Config built in
// code, Key is "" for problems with the file as a whole).
type Error struct {
	File string // file name as given to Load or Parse; may be ""
	Line int    // 1-based line, 0 when unknown
	Key  string // key path such as "peers[1].address"; "" for the whole file
	Msg  string
	// Err is the underlying cause, if any (for example the *fs.PathError of
	// a missing file); errors.Is and errors.As see it through Unwrap.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause, or nil.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every problem found in one configuration, in line order.
// Load, Parse and Validate return a non-empty ErrorList or nil.
// errors.As finds both the list and, through Unwrap, its first *Error.
type ErrorList []*Error

func (l ErrorList) Error() string {
	if len(l) == 0 {
		return "no errors"
	}
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the entries, for errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// reporter collects errors. lines maps key paths to the line they are on
// (empty for a Config built in code); reported holds the keys that got an
// error while decoding, so the checks that follow do not pile up on them.
type reporter struct {
	file     string
	errs     ErrorList
	lines    map[string]int
	reported map[string]bool
	// peerKeys is the key path of each decoded peer ("peers[i]"), for
	// when entries were left out; nil means peers[i] is c.Peers[i].
	peerKeys []string
	// remoteKeys is the key path of each decoded remote ("remotes[i]").
	remoteKeys []string
	// checking is set once decoding is done: from then on reported no
	// longer grows, so every failed check is reported.
	checking bool
}

func newReporter(file string) *reporter {
	return &reporter{file: file, lines: map[string]int{}, reported: map[string]bool{}}
}

// at reports a problem with key on a known line.
func (r *reporter) at(line int, key, format string, args ...any) {
	r.add(&Error{Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (r *reporter) add(e *Error) {
	e.File = r.file
	r.errs = append(r.errs, e)
	if !r.checking {
		r.reported[e.Key] = true
	}
}

// keyf reports a problem with key, on the line key (or its nearest
// recorded parent) is on, unless decoding key failed already.
func (r *reporter) keyf(key, format string, args ...any) {
	if r.reported[key] {
		return
	}
	r.at(r.lineOf(key), key, format, args...)
}

// lineOf returns the line of key, else of its nearest recorded parent.
func (r *reporter) lineOf(key string) int {
	for {
		if l, ok := r.lines[key]; ok {
			return l
		}
		if key == "" {
			return 0
		}
		key = parentKey(key)
	}
}

// result returns the collected errors in line order, or nil.
func (r *reporter) result() error {
	if len(r.errs) == 0 {
		return nil
	}
	sort.SliceStable(r.errs, func(i, j int) bool { return r.errs[i].Line < r.errs[j].Line })
	return r.errs
}

// parentKey strips the last element of a key path:
// "peers[0].buffer" -> "peers[0]" -> "peers" -> "".
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i >= 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexKey(parent string, i int) string {
	return parent + "[" + itoa(i) + "]"
}

func itoa(i int) string { return strconv.Itoa(i) }
