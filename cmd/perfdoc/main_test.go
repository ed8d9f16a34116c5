package main

import (
	"strings"
	"testing"
)

// The page around the section survives, whatever room its buffer has
// past its end (os.ReadFile leaves some) and however much longer the new
// section is than the old.
func TestSplice(t *testing.T) {
	text := "intro\n" + beginMark + "\nold figures\n" + endMark + "\nafter the section\n"
	page := make([]byte, len(text), len(text)+4096)
	copy(page, text)
	body := strings.Repeat("new figures\n", 20)
	got, err := splice(page, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if want := "intro\n" + beginMark + "\n" + body + endMark + "\nafter the section\n"; string(got) != want {
		t.Fatalf("spliced page:\n%q\nwant\n%q", got, want)
	}
	if _, err := splice([]byte("no marks"), nil); err == nil {
		t.Fatal("a page without the marks was accepted")
	}
}
