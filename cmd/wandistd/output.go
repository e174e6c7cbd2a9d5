package main

import (
	"encoding/json"
	"io"
	"os"
	"unicode/utf8"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal: only then does the CLI write
// escape codes (clear screen) to it.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// writeJSON writes v to w as one JSON object on one line (NDJSON, in one
// write, so that a program reading a pipe gets whole lines).
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeJSONIndent writes v to w as indented JSON.
func writeJSONIndent(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonPayload is a payload in JSON: as text when it is UTF-8, else base64.
type jsonPayload struct {
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 []byte  `json:"payload_base64,omitempty"`
}

func newJSONPayload(p []byte) jsonPayload {
	if utf8.Valid(p) {
		s := string(p)
		return jsonPayload{Payload: &s}
	}
	return jsonPayload{PayloadBase64: p}
}
