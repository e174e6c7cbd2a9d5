package erlang

import (
	"errors"
	"testing"
)

func TestParseResult(t *testing.T) {
	got, err := parseResult("result oneway got=10 ooo=0 bad=1 ns=12345")
	if err != nil {
		t.Fatal(err)
	}
	if got["got"] != 10 || got["bad"] != 1 || got["ns"] != 12345 || len(got) != 4 {
		t.Fatalf("parsed %v", got)
	}
	for _, bad := range []string{"result error oneway timed out", "result rr p50=x", "ready", "result rr p50"} {
		if _, err := parseResult(bad); !errors.Is(err, ErrResult) {
			t.Errorf("%q: err %v, want ErrResult", bad, err)
		}
	}
}
