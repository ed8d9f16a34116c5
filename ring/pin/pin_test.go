package pin_test

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// niceOf returns the calling thread's nice value.
func niceOf(t *testing.T) int {
	t.Helper()
	p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - p
}

// TestNice: the thread's nice value is set and restored (as root); without
// privileges a negative value is refused.
func TestNice(t *testing.T) {
	runtime.LockOSThread() // never unlocked: the thread, its nice changed, ends with the test
	before := niceOf(t)
	restore, err := pin.Nice(before + 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := niceOf(t); got != before+3 {
		t.Fatalf("nice %d, want %d", got, before+3)
	}
	restore()
	if os.Geteuid() != 0 {
		// without CAP_SYS_NICE a raised value cannot be lowered back, and
		// a negative one is refused
		if restore, err := pin.Nice(-10); err == nil {
			restore()
			t.Fatal("nice -10 accepted without privileges")
		}
		return
	}
	if got := niceOf(t); got != before {
		t.Fatalf("restored nice %d, want %d", got, before)
	}
	restore, err = pin.Nice(-10)
	if err != nil {
		t.Fatal(err)
	}
	if got := niceOf(t); got != -10 {
		t.Fatalf("nice %d, want -10", got)
	}
	restore()
	if got := niceOf(t); got != before {
		t.Fatalf("restored nice %d, want %d", got, before)
	}
}
