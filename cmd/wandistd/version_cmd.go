package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// versionInfo is what `wandistd version` prints.
type versionInfo struct {
	Version  string `json:"version"`            // the module's version, "(devel)" for a build from a checkout
	Revision string `json:"revision,omitempty"` // the VCS revision built
	Time     string `json:"time,omitempty"`     // the revision's commit time
	Modified bool   `json:"modified"`           // built from a tree with uncommitted changes
	Go       string `json:"go"`                 // the Go version that built it
	Platform string `json:"platform"`           // GOOS/GOARCH
}

// buildVersion reads the version from the binary's build information.
func buildVersion() versionInfo {
	v := versionInfo{Version: "unknown", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func cmdVersion(_ context.Context, args []string, stdout, _ io.Writer, _ io.Reader) error {
	fs := newFlags("version", "[--json]", stdout)
	asJSON := fs.Bool("json", false, "print JSON: version, revision, time, modified, go, platform")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr(fs, "unexpected argument %q", fs.Arg(0))
	}
	v := buildVersion()
	if *asJSON {
		return writeJSON(stdout, v)
	}
	var extra []string
	if v.Revision != "" {
		extra = append(extra, "revision "+v.Revision)
	}
	if v.Time != "" {
		extra = append(extra, v.Time)
	}
	if v.Modified {
		extra = append(extra, "modified")
	}
	line := "wandistd " + v.Version
	if len(extra) > 0 {
		line += " (" + strings.Join(extra, ", ") + ")"
	}
	_, err := fmt.Fprintf(stdout, "%s %s %s\n", line, v.Go, v.Platform)
	return err
}
