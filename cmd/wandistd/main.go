// Command wandistd is the wandist daemon and its command-line tools: it
// links clusters in different data centers with authenticated, multiplexed,
// self-healing links, buffers messages per destination, and makes process
// groups addressable across clusters.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer, stdin io.Reader) error
}

var commands = map[string]command{
	"run":     {"run the daemon: wandistd run -c FILE (SIGHUP reloads the config)", cmdRun},
	"bench":   {"measure messages/s and latency between two of your nodes: wandistd bench --from SOCK|FILE --to SOCK|FILE [--json]", cmdBench},
	"version": {"print the version: wandistd version [--json]", cmdVersion},
	"reload":  {"make the daemon read its config file again: wandistd reload [-c FILE] [--admin ADDR] [--token T]", cmdReload},
	"keygen":  {"make a node key, or print a key file's public key: wandistd keygen -o FILE|- [-f] | --public FILE", cmdKeygen},
	"ca":      {"make a cluster CA or a node certificate: wandistd ca init -cluster C | ca issue -ca DIR -node N -key FILE", cmdCA},
	"status":  {"show this node's links: wandistd status [-c FILE] [--admin ADDR] [--json] [--watch]", cmdStatus},
	"sub":     {"receive from a group: wandistd sub [-c FILE] --group G [--count N] [--show-sender] [--json]", cmdSub},
	"pub":     {"send to a group: wandistd pub [-c FILE] --group G [--key K | --strategy S] [PAYLOAD]", cmdPub},
	"demo":    {"run two local clusters in one process and show a message stream across a broken and healed link", cmdDemo},
	"config":  {"check a config file: wandistd config check -c FILE", cmdConfig},
	"req":     {"send a request and print the reply: wandistd req [-c FILE] --group G [--key K] PAYLOAD", cmdReq},
	"serve":   {"answer requests: wandistd serve [-c FILE] --group G --echo [--partitions N --own LIST]", cmdServe},
	"groups":  {"list every group, or list or watch a group's members: wandistd groups [-c FILE] [--group G [--local] [--watch]] [--json]", cmdGroups},
}

// errUsage marks a usage error (exit code 2); a *usageError wraps it.
var errUsage = errors.New("usage error")

// usageError is a usage error of command cmd ("pub", "ca init").
type usageError struct{ cmd, msg string }

func (e *usageError) Error() string {
	if e.cmd == "" {
		return fmt.Sprintf("wandistd: %s; see 'wandistd --help'", e.msg)
	}
	return fmt.Sprintf("wandistd %s: %s; see 'wandistd %s --help'", e.cmd, e.msg, e.cmd)
}

func (e *usageError) Unwrap() error { return errUsage }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Stdin)
	stop()
	os.Exit(code)
}

// runMain runs the command in args and returns the exit code: 0, 1 for a
// failure, 2 for a usage error.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer, stdin io.Reader) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			if _, ok := commands[args[1]]; ok {
				return runMain(ctx, []string{args[1], "--help"}, stdout, stderr, stdin)
			}
		}
		usage(stdout)
		return 0
	case "--version", "-version":
		args = []string{"version"}
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintln(stderr, &usageError{msg: fmt.Sprintf("unknown command %q", args[0])})
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr, stdin)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, ue)
		return 2
	}
	fmt.Fprintf(stderr, "wandistd %s: %v\n", args[0], err)
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: wandistd COMMAND [flags] [args]   (wandistd COMMAND --help, or wandistd help COMMAND, for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nFlags may come before or after arguments; after --, everything is an argument.")
}

// flagSet is a command's flags. Help (-h, --help) goes to stdout; a usage
// error is returned as a *usageError, which runMain prints to stderr.
type flagSet struct {
	*flag.FlagSet
	cmd      string // "pub", "ca init"
	synopsis string
	notes    []string // printed after the flags by --help
	stdout   io.Writer
}

// newFlags returns the flags of command cmd.
func newFlags(cmd, synopsis string, stdout io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("wandistd "+cmd, flag.ContinueOnError), cmd: cmd, synopsis: synopsis, stdout: stdout}
	fs.SetOutput(io.Discard) // parse reports errors in one style
	fs.Usage = func() {}
	return fs
}

// help prints the command's usage and flags to stdout.
func (fs *flagSet) help() {
	fmt.Fprintf(fs.stdout, "usage: wandistd %s %s\n\nflags:\n", fs.cmd, fs.synopsis)
	fs.SetOutput(fs.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	for _, n := range fs.notes {
		fmt.Fprintf(fs.stdout, "\n%s\n", n)
	}
}

// parse parses args, flags before, between and after the positional
// arguments ("req --group g hello --timeout 1s"); after "--" everything is
// positional. Afterwards fs.Args() holds the positional arguments.
// -h/--help prints help to stdout and returns flag.ErrHelp.
func parse(fs *flagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.help()
				return err
			}
			return usageErr(fs, "%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Parsing "--" and the positionals sets fs.Args() and no flag.
	return fs.Parse(append([]string{"--"}, pos...))
}

// usageErr returns a usage error of fs's command.
func usageErr(fs *flagSet, format string, a ...any) error {
	return &usageError{cmd: fs.cmd, msg: fmt.Sprintf(format, a...)}
}
