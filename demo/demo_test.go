package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The demo is the README's first command: it must deliver everything exactly
// once across a real cut of the QUIC path.
func TestDemoDeliversExactlyOnceAcrossCut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	rep, err := Run(ctx, &out, Options{Messages: 1500, Outage: 2 * time.Second, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Sent != 1500 || rep.Delivered != rep.Sent || rep.Lost != 0 || rep.Duplicated != 0 || rep.OutOfOrder != 0 {
		t.Fatalf("report %+v\n%s", rep, out.String())
	}
	if rep.Reconnects < 1 {
		t.Fatalf("the link never broke: %+v", rep)
	}
	if rep.LinkDownAfter <= 0 || rep.LinkUpAfter <= 0 {
		t.Fatalf("cut/heal not observed: %+v", rep)
	}
	if !strings.Contains(out.String(), "lost 0, duplicated 0") {
		t.Fatalf("summary line missing:\n%s", out.String())
	}
}
