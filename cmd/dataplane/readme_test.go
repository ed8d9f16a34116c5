package main

import (
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The embedding program in README.md compiles against this module and
// does what the README says it prints.
func TestReadmeEmbeddingExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- embed-example -->\n```go\n")
	if !ok {
		t.Fatal("README.md has no <!-- embed-example --> Go block")
	}
	code, _, ok := strings.Cut(after, "\n```")
	if !ok {
		t.Fatal("the embed-example block is not closed")
	}
	if n := strings.Count(code, "\n"); n > 42 {
		t.Fatalf("the embedding example is %d lines; keep it short", n)
	}
	if formatted, err := format.Source([]byte(code + "\n")); err != nil || string(formatted) != code+"\n" {
		t.Fatalf("the README example is not gofmt-formatted (%v)", err)
	}
	file := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(file, []byte(code+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", file) // resolved against this module: run from inside it
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run README example: %v\n%s", err, out)
	}
	if want := "inspected 100000 reinjected 100000 leaked 0 <nil>"; strings.TrimSpace(string(out)) != want {
		t.Fatalf("README example printed %q, want %q", out, want)
	}
}
