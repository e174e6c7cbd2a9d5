package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The sockets the doc comment's commands use are those of the configs in
// configs/examples/three-cluster, which it points at: a reader who starts
// that example can run the commands as written.
func TestDocSocketsExistInExample(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "configs", "examples", "three-cluster")
	sockets := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Local struct{ Socket string } `yaml:"local"`
		}
		if err := yaml.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		sockets[c.Local.Socket] = true
	}
	if len(sockets) != 3 {
		t.Fatalf("found sockets %v in %s, want 3", sockets, dir)
	}
	used := regexp.MustCompile(`partitioned-kv -socket (\S+) `).FindAllStringSubmatch(string(src), -1)
	if len(used) != 4 {
		t.Fatalf("the doc comment has %d commands with -socket, want 4", len(used))
	}
	for _, m := range used {
		if !sockets[m[1]] {
			t.Errorf("the doc comment uses socket %s, which no config in %s has (they have %v)", m[1], dir, sockets)
		}
	}
}
