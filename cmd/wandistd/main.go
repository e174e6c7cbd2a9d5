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
	"run":    {"run the daemon: wandistd run -c FILE (SIGHUP reloads the config)", cmdRun},
	"reload": {"make the daemon read its config file again: wandistd reload [-c FILE] [--admin ADDR] [--token T]", cmdReload},
	"keygen": {"make a node key: wandistd keygen -o FILE [-f]", cmdKeygen},
	"ca":     {"make a cluster CA or a node certificate: wandistd ca init -cluster C | ca issue -ca DIR -node N -key FILE", cmdCA},
	"status": {"show this node's links: wandistd status [--admin ADDR] [--json]", cmdStatus},
	"sub":    {"receive from a group: wandistd sub --socket PATH --group G [--count N]", cmdSub},
	"pub":    {"send to a group: wandistd pub --socket PATH --group G [PAYLOAD]", cmdPub},
	"demo":   {"run two local clusters in one process and show a message stream across a broken and healed link", cmdDemo},
	"config": {"check a config file: wandistd config check -c FILE", cmdConfig},
	"req":    {"send a request and print the reply: wandistd req --socket PATH --group G [--key K] PAYLOAD", cmdReq},
	"serve":  {"answer requests: wandistd serve --socket PATH --group G --echo [--partitions N --own LIST]", cmdServe},
	"groups": {"list every group (wandistd groups [--admin ADDR]), or list or watch a group's members: wandistd groups --socket PATH --group G [--local] [--watch]", cmdGroups},
}

// errUsage marks a usage error: the message was printed, exit code 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Stdin)
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer, stdin io.Reader) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "wandistd: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr, stdin)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "wandistd %s: %v\n", args[0], err)
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: wandistd COMMAND [flags]   (wandistd COMMAND --help for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-7s %s\n", n, commands[n].summary)
	}
}

// newFlags returns a FlagSet that prints to stderr and reports usage errors.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("wandistd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: wandistd %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, mapping parse errors to errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func usageErr(fs *flag.FlagSet, format string, a ...any) error {
	fmt.Fprintf(fs.Output(), "%s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	fs.Usage()
	return errUsage
}
