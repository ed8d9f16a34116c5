package dataplane_test

import (
	"fmt"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane"
	"github.com/wfpxdp/wfpxdp/dataplane/memport"
	"github.com/wfpxdp/wfpxdp/inject"
)

// Embedding the switch: two in-memory ports, a deferred-inspection callout
// on the ingress layer, run until 10000 packets have gone through.
func Example() {
	sw, _ := dataplane.New(inject.NewEngine(), dataplane.Config{ID: inject.GUID{1}, NoPin: true})
	gen, _ := memport.New(memport.Config{Name: "gen", Limit: 10000,
		Templates: []memport.Template{{Dst: 0x02000000000b, Src: 0x02000000000a}}})
	sink, _ := memport.New(memport.Config{Name: "sink"})
	sw.AddPort(1, 0, 0x02000000000a, gen)
	sw.AddPort(2, 0, 0x02000000000b, sink)
	sw.RegisterCallout(dataplane.NewInspector("inspect", nil))
	sw.SetFilters([]dataplane.Filter{{Name: "inspect-all", Layer: dataplane.LayerIngress,
		Action: dataplane.FilterCallout, Callout: "inspect"}})

	sw.Start()
	for n, _ := sink.Received(); n < 10000; n, _ = sink.Received() {
		time.Sleep(time.Millisecond)
	}
	if err := sw.Close(); err != nil { // drains (R7) and checks every frame is back
		panic(err)
	}
	st, acct := sw.Stats(), sw.Accounting()
	fmt.Println("rx", st.RX, "absorbed", st.Absorbed, "reinjected", st.Reinjected, "tx", st.TX)
	fmt.Println("leaked", acct.Leaked)
	// Output:
	// rx 10000 absorbed 10000 reinjected 10000 tx 10000
	// leaked 0
}
