package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/wfpxdp/wfpxdp/dataplane"
)

// ErrNotLive wraps a reload that changes what cannot change while the
// switch runs.
var ErrNotLive = errors.New("cannot change while the switch runs")

// Reload brings the running switch to what f describes, without stopping
// it and without losing a packet: ports removed and added, static MACs
// added, and the filter set replaced (the stages take it from their next
// batch). It returns what it changed. What cannot change live — the switch
// section (frames, frame size, mode, cores …), the callouts, a port's own
// settings, a static MAC's removal, an AF_XDP port on a switch started
// without one — is refused, every such change named, and then nothing is
// applied: the switch keeps running as it was.
func (rt *Runtime) Reload(f *File) (changes []string, err error) {
	old := rt.file
	if old == nil {
		return nil, errors.New("reload: the runtime was not built from a file")
	}
	var refused []string
	ov, nv := reflect.ValueOf(old.Switch), reflect.ValueOf(f.Switch)
	for i := 0; i < ov.NumField(); i++ {
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			tag, _, _ := strings.Cut(ov.Type().Field(i).Tag.Get("yaml"), ",")
			refused = append(refused, "switch."+tag)
		}
	}
	if !reflect.DeepEqual(old.Callouts, f.Callouts) {
		refused = append(refused, "callouts")
	}
	oldPorts := map[uint32]PortSection{}
	for _, p := range old.Ports {
		oldPorts[p.ID] = p
	}
	newPorts := map[uint32]bool{}
	var added []int
	for i, p := range f.Ports {
		newPorts[p.ID] = true
		op, ok := oldPorts[p.ID]
		switch {
		case !ok && p.Kind == "afxdp" && rt.region == nil:
			refused = append(refused, fmt.Sprintf("ports[%d] (an AF_XDP port on a switch that started with none: it has no UMEM)", i))
		case !ok:
			added = append(added, i)
		case !reflect.DeepEqual(op, p):
			refused = append(refused, fmt.Sprintf("ports[%d] (port %d's settings; remove it in one reload and add it back in the next)", i, p.ID))
		}
	}
	newMACs := map[StaticMAC]bool{}
	for _, e := range f.StaticMACs {
		newMACs[e] = true
	}
	for _, e := range old.StaticMACs {
		if !newMACs[e] && newPorts[e.Port] {
			refused = append(refused, fmt.Sprintf("static_macs (removing %s -> port %d)", e.MAC, e.Port))
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("%s: %w: %s; restart to apply them (nothing was changed)", f.name, ErrNotLive, strings.Join(refused, ", "))
	}
	for _, p := range old.Ports {
		if !newPorts[p.ID] {
			if err := rt.removePort(p.ID); err != nil {
				return changes, err
			}
			changes = append(changes, fmt.Sprintf("removed port %d (%s)", p.ID, p.Name))
		}
	}
	for _, i := range added {
		if f.Ports[i].Kind == "afxdp" {
			if err := f.checkInterface(i, rt.multiBuffer); err != nil {
				return changes, err
			}
		}
		if err := f.addPort(i, rt); err != nil {
			return changes, err
		}
		changes = append(changes, fmt.Sprintf("added port %d (%s)", f.Ports[i].ID, f.Ports[i].Name))
	}
	oldMACs := map[StaticMAC]bool{}
	for _, e := range old.StaticMACs {
		oldMACs[e] = true
	}
	for i, e := range f.StaticMACs {
		if oldMACs[e] {
			continue
		}
		m, _ := dataplane.ParseMAC(e.MAC)
		if err := rt.Switch.AddStaticMAC(e.Port, m); err != nil {
			return changes, f.errAt(err.Error(), "static_macs", i)
		}
		changes = append(changes, fmt.Sprintf("static MAC %s -> port %d", e.MAC, e.Port))
	}
	if !reflect.DeepEqual(old.Filters, f.Filters) {
		filters := f.switchFilters()
		if err := rt.Switch.SetFilters(filters); err != nil {
			return changes, f.errAt(err.Error(), "filters")
		}
		changes = append(changes, fmt.Sprintf("filters: %d in force", len(filters)))
	}
	rt.file = f
	return changes, nil
}

// removePort detaches port id from the switch (it drains first), detaches
// its XDP program and forgets it.
func (rt *Runtime) removePort(id uint32) error {
	if err := rt.Switch.RemovePort(id); err != nil {
		return err
	}
	for i, p := range rt.Ports {
		if p.ID != id {
			continue
		}
		var err error
		if p.Program != nil {
			err = p.Program.Close()
		}
		for _, x := range p.AFXDP {
			if x.Socket() == rt.shared {
				rt.shared = nil // the UMEM lives on with the sockets that share it
			}
		}
		rt.Ports = append(rt.Ports[:i], rt.Ports[i+1:]...)
		if rt.shared == nil {
			for _, q := range rt.XDPPorts() {
				rt.shared = q.Socket()
				break
			}
		}
		return err
	}
	return nil
}
