package config_test

import (
	"context"
	"fmt"
	"time"

	"github.com/wfpxdp/wfpxdp/dataplane/config"
)

// A switch from a configuration file: load (every field checked, errors
// name the line), build (ports, callouts, filters), start, stop.
func Example() {
	f, err := config.Load("example-memory.yaml")
	if err != nil {
		fmt.Println(err) // e.g. example-memory.yaml:26: ports[1].mac: ...
		return
	}
	f.Switch.Cores = nil // any CPU this process may use
	rt, err := f.Build(config.BuildOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	rt.Switch.Start(context.Background())
	sink := rt.Ports[1].Memory[0] // port "sink", queue 0
	for n, _ := sink.Received(); n < 200000; n, _ = sink.Received() {
		time.Sleep(time.Millisecond)
	}
	err = rt.Close() // drains, checks every frame is back, releases the ports
	st := rt.Switch.Stats()
	fmt.Println("tx", st.TX, "reinjected", st.Reinjected, "leaked", rt.Switch.Accounting().Leaked, err)
	// Output: tx 200000 reinjected 200000 leaked 0 <nil>
}
