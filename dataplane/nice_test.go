package dataplane_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/inject"
)

// threadsAtNice counts this process's threads whose nice value is n.
func threadsAtNice(t *testing.T, n int) int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/self/task/*/stat")
	count := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited
		}
		// fields after the command (which may hold spaces) ")": state is
		// field 3, nice field 19
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 16 {
			if v, err := strconv.Atoi(f[16]); err == nil && v == n {
				count++
			}
		}
	}
	return count
}

// TestLcoreNice: with Config.LcoreNice the pinned lcore runs at that nice
// value while the switch runs and gives it back when it stops, and the
// plan says so; without the privilege the plan says it was refused.
func TestLcoreNice(t *testing.T) {
	const nice = -7
	sw, err := dataplane.New(inject.NewEngine(), dataplane.Config{ID: inject.GUID{7}, CPUs: []int{0}, LcoreNice: nice})
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := memport.New(memport.Config{Name: "gen", Rate: 100000,
		Templates: []memport.Template{{Dst: 0x02000000000b, Src: 0x02000000000a}}})
	sink, _ := memport.New(memport.Config{Name: "sink"})
	sw.AddPort(1, 0, 0x02000000000a, gen)
	sw.AddPort(2, 0, 0x02000000000b, sink)
	before := threadsAtNice(t, nice)
	if err := sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	running := threadsAtNice(t, nice)
	plan := sw.Plan()
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if !strings.Contains(plan, "refused") {
			t.Fatalf("plan %q: want the refusal noted", plan)
		}
		return
	}
	if !strings.Contains(plan, "(lcores at nice -7)") {
		t.Fatalf("plan %q", plan)
	}
	if running != before+1 {
		t.Fatalf("%d threads at nice %d while running, %d before: want one more (the lcore)", running, nice, before)
	}
	if after := threadsAtNice(t, nice); after != before {
		t.Fatalf("%d threads at nice %d after Close, %d before", after, nice, before)
	}
}
