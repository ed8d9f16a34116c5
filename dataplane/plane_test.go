package dataplane_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// The stages reach the switch only through the data plane Start builds:
// no type a stage is made of holds a *Switch, so nothing a configuration
// method changes reaches a running stage except through what the plane
// publishes (the filter set, the port table, the forwarding table).
func TestStagesHoldNoSwitch(t *testing.T) {
	stageTypes := map[string]bool{"plane": true, "queue": true, "ingressStage": true, "reinjectStage": true,
		"egressStage": true, "completionStage": true, "classifier": true, "Worker": true, "lcore": true, "cacheSet": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !stageTypes[ts.Name.Name] {
				return true
			}
			found[ts.Name.Name] = true
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			for _, fld := range st.Fields.List {
				ast.Inspect(fld.Type, func(n ast.Node) bool {
					if id, ok := n.(*ast.Ident); ok && id.Name == "Switch" {
						t.Errorf("%s: %s has a field of a type naming Switch (%s)", fset.Position(fld.Pos()), ts.Name.Name, src[fset.Position(fld.Type.Pos()).Offset:fset.Position(fld.Type.End()).Offset])
					}
					return true
				})
			}
			return false
		})
	}
	for name := range stageTypes {
		if !found[name] {
			t.Errorf("type %s not found: update the list", name)
		}
	}
}

// Every Start builds a new data plane: a callout registered while stopped
// gets a worker, the filters set while stopped apply, and the counters
// carry on from the planes before instead of starting again at zero.
func TestRestartBuildsNewPlane(t *testing.T) {
	r := newRig(t, rigOpts{})
	var first atomic.Int64
	if err := r.sw.RegisterCallout(dataplane.NewInspector("first", func(b []*nbl.NBL) { first.Add(int64(len(b))) })); err != nil {
		t.Fatal(err)
	}
	if err := r.sw.SetFilters([]dataplane.Filter{{Name: "f", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "first"}}); err != nil {
		t.Fatal(err)
	}
	r.run(func() bool { return r.received(2) >= 5000 })
	st1 := r.sw.Stats()
	if st1.RX < 5000 || st1.Absorbed == 0 || first.Load() == 0 {
		t.Fatalf("first run: %+v, first callout saw %d", st1, first.Load())
	}
	var second atomic.Int64
	if err := r.sw.RegisterCallout(dataplane.NewInspector("second", func(b []*nbl.NBL) { second.Add(int64(len(b))) })); err != nil {
		t.Fatal(err)
	}
	if _, err := r.sw.AddFilter(dataplane.Filter{Name: "s", Layer: dataplane.LayerEgress, Action: dataplane.FilterCallout, Callout: "second"}); err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 3; run++ {
		before := r.sw.Stats()
		seen := second.Load()
		r.run(func() bool { return second.Load() >= seen+5000 })
		if !strings.Contains(r.sw.Plan(), "absorb:second") {
			t.Fatalf("run %d: plan %q has no worker for the callout registered while stopped", run, r.sw.Plan())
		}
		st := r.sw.Stats()
		if second.Load() < seen+5000 {
			t.Fatalf("run %d: the egress callout saw %d new packets", run, second.Load()-seen)
		}
		if st.RX < before.RX+5000 || st.Absorbed < before.Absorbed || st.Completions < before.Completions ||
			len(st.QueueRX) != 1 || st.QueueRX[0] != st.RX {
			t.Fatalf("run %d: counters went back: before %+v, after %+v", run, before, st)
		}
	}
}

// Start takes a context that bounds the start only: cancelled before, it
// starts nothing; Stop's context bounds the drain, and what a Stop cut
// short is drained by the next Start before it builds a new plane, so
// nothing is lost.
func TestStartStopContexts(t *testing.T) {
	r := newRig(t, rigOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.sw.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context: %v, want context.Canceled", err)
	}
	if err := r.sw.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after a Start that did not start: %v", err)
	}
	// A callout that keeps every list it absorbs: Stop must discard what
	// it holds (R7), and with an expired context it cannot drain that.
	hold := &dataplane.Callout{Name: "hold", Classify: dataplane.ClassifyFunc(func(c *dataplane.Call, out *dataplane.ClassifyOut) {
		out.Absorb()
	}), Worker: func(w *dataplane.Worker, lists []*nbl.NBL) {
		for _, l := range lists {
			w.Hold(l)
		}
	}}
	if err := r.sw.RegisterCallout(hold); err != nil {
		t.Fatal(err)
	}
	if err := r.sw.SetFilters([]dataplane.Filter{{Name: "h", Layer: dataplane.LayerIngress, Action: dataplane.FilterCallout, Callout: "hold"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.sw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.sw.Stats().Absorbed < 100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	expired, cancel2 := context.WithTimeout(context.Background(), 0)
	defer cancel2()
	var stopErr error
	within(t, 5*time.Second, "Stop with an expired context", func() { stopErr = r.sw.Stop(expired) })
	if !errors.Is(stopErr, dataplane.ErrLeak) {
		t.Fatalf("Stop with an expired context while lists are held: %v, want ErrLeak with the numbers", stopErr)
	}
	if a := r.sw.Accounting(); a.InFlight == 0 {
		t.Fatalf("accounting after the cut-short Stop shows nothing in flight: %+v", a)
	}
	// The next Start drains the old plane first; nothing is lost.
	if err := r.sw.Start(context.Background()); err != nil {
		t.Fatalf("Start after a cut-short Stop: %v", err)
	}
	r.stop()
	st := r.sw.Stats()
	if st.Discarded == 0 || st.Discarded != st.Absorbed {
		t.Fatalf("held lists: absorbed %d, discarded %d (R7: every held list is discarded)", st.Absorbed, st.Discarded)
	}
}
