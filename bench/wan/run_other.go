//go:build !linux

package wan

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrUnsupported is wrapped when the machine cannot run the WAN bench.
var ErrUnsupported = errors.New("wan: unsupported here")

// Options choose what a WAN run does.
type Options struct {
	Quick   bool
	Systems []string
	Rate    int64
	Log     io.Writer
	Command string
	Keep    bool
	Tune    func(*Config)
}

// Run fails: the WAN bench needs Linux network namespaces.
func Run(ctx context.Context, o Options) (*Result, error) {
	return nil, fmt.Errorf("%w: the WAN bench needs Linux (network namespaces, TUN, nftables, tbf)", ErrUnsupported)
}
