package config_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/wfpxdp/wfpxdp/dataplane/config"
)

// FuzzParse: any input is parsed or refused with a one-line *config.Error;
// nothing panics, and what is accepted has ports and sane sizes.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"example.yaml", "example-memory.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("f.yaml", data)
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %q is not a *config.Error", err, err)
			}
			if strings.ContainsRune(err.Error(), '\n') {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if len(cfg.Ports) == 0 || cfg.Switch.Batch < 1 || cfg.Switch.Batch > 256 || cfg.Switch.Queues < 1 {
			t.Fatalf("accepted %+v", cfg.Switch)
		}
	})
}
