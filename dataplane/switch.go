package dataplane

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
	"github.com/wfpxdp/wfpxdp/ring/pin"
)

// Mode is how stages are placed on cores.
type Mode uint8

// Execution modes: run-to-completion (one pinned goroutine per queue runs
// every stage of the queue in turn) and pipelined (the stages are spread
// over pinned goroutines, rings between them). The stages are the same.
const (
	ModeRTC Mode = iota
	ModePipeline
)

func (m Mode) String() string {
	if m == ModePipeline {
		return "pipeline"
	}
	return "rtc"
}

// Config sizes and places a switch. Zero values take the defaults shown.
type Config struct {
	ID        inject.GUID
	Frames    int    // frame descriptors / UMEM frames; 8192
	FrameSize int    // bytes per frame; 2048
	Reserve   int    // descriptors for clones and allocated lists; 2048
	Region    []byte // the frame region (the AF_XDP UMEM); allocated if nil
	Queues    int    // pipelines (RSS queues); 1
	Batch     int    // packets per burst, at most 256; 32
	RingSize  int    // stage ring size; 1024
	Mode      Mode
	// CPUs the lcores are pinned to, in order; default: the CPUs this
	// process may use. RTC: queue q runs on CPUs[(q+1)%n] (CPU 0 is left
	// to a traffic generator when there are several). Pipeline: ingress of
	// queue q on CPUs[(2q)%n], every other stage of it on CPUs[(2q+1)%n].
	CPUs []int
	// NoPin leaves lcores unpinned (tests on a busy machine).
	NoPin bool
	// LcoreNice, if not 0, is the nice value of the pinned lcore threads
	// (pin.Nice): at -10 the kernel's fair scheduler lets the other threads
	// that wake on an lcore's CPU (Go's sysmon among them) preempt it far
	// less. A negative value needs CAP_SYS_NICE; where it is refused the
	// lcores run at the default and Plan says so.
	LcoreNice int
	Link      LinkKind // LinkChan wires the stages with channels (the baseline)
	// IdleSleep bounds the idle backoff: an lcore that found no work for a
	// while yields, and after longer sleeps this long. 0: never sleep.
	IdleSleep time.Duration
	FDBSize   int // forwarding database slots; 4096
	// StageStamps stamps each list with the time it passed the ingress,
	// absorb worker, reinject and TX points (NBL.Stamps, clock Now), for
	// per-stage latency; it costs a clock read per burst and stage.
	StageStamps bool
	// Capture, if set, receives a copy of the packets at its points
	// (absorbed, dropped, injected); see Capture.
	Capture *Capture
}

const maxPorts = 64

// ErrRunning is returned for a change that must be made before Start or
// after Stop.
var ErrRunning = errors.New("switch is running")

// Switch is a virtual switch: ports, filters, callouts, the forwarding
// database and one pipeline per queue. It implements inject.Switch.
//
// Threading contract: configuration methods take mu and may be called from
// any goroutine; the stages run on the lcores Start creates.
type Switch struct {
	cfg   Config
	id    inject.GUID
	arena *nbl.Arena
	eng   *inject.Engine
	fdb   *macTable

	ports   portTable
	filters atomic.Pointer[filterSet]

	mu           sync.Mutex
	filterSrc    []Filter                 // mu protects filterSrc: the filters in force, ids set
	nextFilterID uint64                   // mu protects nextFilterID: the last id given
	callouts     map[string]*calloutEntry // mu protects callouts
	calloutList  []*calloutEntry          // mu protects calloutList: by id
	lcores       []*lcore                 // mu protects lcores: running lcores
	plan         string                   // the core plan in force, for printing
	wg           sync.WaitGroup

	// cur is the data plane of the last Start (nil before the first): the
	// queues injections go to and Stats and Accounting read. Replaced only
	// by Start, under life, with the lcores of the one before stopped.
	cur atomic.Pointer[plane]

	running atomic.Bool

	// life serialises Start, Stop and Close, which may be called from any
	// goroutine, at once; a Stop waits for a concurrent one to finish.
	life   sync.Mutex
	closed atomic.Bool // Close has run; set under life

	// Injections (see target.Inject): accepting is true from Start until
	// Stop's last drain; started once a Start has run; injecting counts
	// inject calls inside target.Inject.
	accepting atomic.Bool
	started   atomic.Bool
	injecting atomic.Int64
}

// WithDefaults returns c with every zero size replaced by its default (see
// Config); New applies it.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Frames, 8192)
	def(&c.FrameSize, 2048)
	def(&c.Reserve, 2048)
	def(&c.Queues, 1)
	def(&c.Batch, 32)
	def(&c.RingSize, 1024)
	def(&c.FDBSize, 4096)
	return c
}

// New builds a stopped switch with no ports, filters or callouts, and
// attaches it to eng (which may be shared by several switches).
func New(eng *inject.Engine, cfg Config) (*Switch, error) {
	cfg = cfg.WithDefaults()
	if cfg.Batch > 256 || cfg.Batch < 1 {
		return nil, fmt.Errorf("new switch: batch %d, want 1..256", cfg.Batch)
	}
	if cfg.Queues > 64 {
		return nil, fmt.Errorf("new switch: %d queues, at most 64", cfg.Queues)
	}
	if cfg.RingSize&(cfg.RingSize-1) != 0 {
		return nil, fmt.Errorf("new switch: ring size %d is not a power of two", cfg.RingSize)
	}
	arena, err := nbl.NewArena(nbl.Config{Frames: cfg.Frames, FrameSize: cfg.FrameSize, Reserve: cfg.Reserve, Region: cfg.Region})
	if err != nil {
		return nil, fmt.Errorf("new switch: %w", err)
	}
	if len(cfg.CPUs) == 0 {
		if cfg.CPUs, err = pin.CPUs(); err != nil {
			return nil, fmt.Errorf("new switch: %w", err)
		}
	}
	sw := &Switch{cfg: cfg, id: cfg.ID, arena: arena, eng: eng, fdb: newMACTable(cfg.FDBSize),
		callouts: map[string]*calloutEntry{}}
	fs, _ := compileFilters(nil, nil)
	sw.filters.Store(fs)
	eng.Attach(target{sw})
	return sw, nil
}

// Arena returns the switch's descriptors and frame region.
func (sw *Switch) Arena() *nbl.Arena { return sw.arena }

// Engine returns the injection engine the switch is attached to.
func (sw *Switch) Engine() *inject.Engine { return sw.eng }

// Config returns the configuration with defaults filled in.
func (sw *Switch) Config() Config { return sw.cfg }

// ID returns the switch's GUID: the VSWITCH_ID incoming value callouts
// see and the vSwitchId an inject call names (R11).
func (sw *Switch) ID() inject.GUID { return sw.id }

// target is the switch as the injection engine sees it (inject.Switch).
// It is unexported so that nothing outside the package can hand the
// switch an injection that the engine has not validated (G1).
type target struct{ sw *Switch }

func (t target) ID() inject.GUID { return t.sw.id }

// PortValid: port 0 always (R13), else an attached port with that NIC
// index (R12).
func (t target) PortValid(id uint32, nic uint16) bool {
	if id == 0 {
		return true
	}
	p := t.sw.ports.byID(id)
	return p != nil && p.attached() && nic <= p.MaxNIC
}

// HasCallouts: a filter of either layer calls the callout that owns the
// handle (R22, R9).
func (t target) HasCallouts(handle uint32) bool { return t.sw.filters.Load().hasHandle(handle) }

// Inject queues the injection on the injection link of the queue that
// owns its first list. It is refused with STATUS_FWP_L2_DRIVER_NOT_READY
// before the first Start and STATUS_NDIS_PAUSED while stopped (R41): no
// stage would ever take it, and the handle's Destroy would wait for it
// for ever (R4).
func (t target) Inject(inj inject.Injection) inject.Status {
	sw := t.sw
	// injecting pairs with Stop: Stop clears accepting and then waits for
	// injecting to reach 0, so an injection either sees accepting false or
	// is queued before Stop's last drain.
	sw.injecting.Add(1)
	defer sw.injecting.Add(-1)
	if !sw.accepting.Load() {
		if sw.started.Load() {
			return inject.StatusNDISPaused
		}
		return inject.StatusFwpL2DriverNotReady
	}
	qs := sw.cur.Load().queues
	q := qs[int(inj.Lists.Queue)%len(qs)]
	if !enqueueOne(q.inj, inj) {
		return inject.StatusInsufficientResources
	}
	return inject.StatusSuccess
}

// ---- ports ----

// PortErr returns why the switch detached port id on its own (its driver
// failed), or nil if it has not (or there is no such port).
func (sw *Switch) PortErr(id uint32) error {
	for i := range sw.ports.slots {
		if p := sw.ports.slots[i].Load(); p != nil && p.ID == id {
			return p.Err()
		}
	}
	if e, ok := sw.ports.failure(id); ok {
		return e
	}
	return nil
}

// AddPort attaches a port with one driver per queue. Port ids are unique;
// port 0 may be added like any other (its traffic is trusted, R13).
func (sw *Switch) AddPort(id uint32, maxNIC uint16, mac MAC, drivers ...Driver) (*Port, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.closed.Load() {
		return nil, fmt.Errorf("add port %d: %w", id, ErrClosed)
	}
	if len(drivers) != sw.cfg.Queues {
		return nil, fmt.Errorf("add port %d: %d drivers for %d queues", id, len(drivers), sw.cfg.Queues)
	}
	for q, d := range drivers {
		if d == nil {
			return nil, fmt.Errorf("add port %d: no driver for queue %d", id, q)
		}
	}
	if sw.ports.byID(id) != nil {
		return nil, fmt.Errorf("add port %d: id in use", id)
	}
	slot := -1
	for i := range sw.ports.slots {
		if sw.ports.slots[i].Load() == nil {
			slot = i
			break
		}
	}
	if slot < 0 {
		return nil, fmt.Errorf("add port %d: all %d port slots in use", id, maxPorts)
	}
	p := &Port{ID: id, MaxNIC: maxNIC, MAC: mac, slot: slot, queues: drivers, closed: make(chan struct{})}
	if mac != 0 && !sw.fdb.pin(mac, slot) {
		return nil, fmt.Errorf("add port %d: forwarding database full around %v", id, mac)
	}
	sw.ports.slots[slot].Store(p)
	sw.ports.changed()
	return p, nil
}

// AddStaticMAC adds a static forwarding entry: frames to mac go to port id,
// whatever source addresses are learned later, until the port is detached.
func (sw *Switch) AddStaticMAC(id uint32, mac MAC) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	p := sw.ports.byID(id)
	if p == nil || !p.attached() {
		return fmt.Errorf("static MAC %v: no attached port %d", mac, id)
	}
	if mac == 0 || mac.Type() != MACUnicast {
		return fmt.Errorf("static MAC %v: want a unicast address", mac)
	}
	if !sw.fdb.pin(mac, p.slot) {
		return fmt.Errorf("static MAC %v: forwarding database full around it", mac)
	}
	return nil
}

// RemovePort detaches a port: from now on nothing is received from or sent
// to it, and injections naming it are refused (R12). Lists already
// accepted that it can no longer carry complete with
// STATUS_INVALID_DEVICE_STATE (G2). It returns when every frame the port
// held is back: at once when the switch is stopped, else once the
// completion stages have drained it.
func (sw *Switch) RemovePort(id uint32) error {
	sw.mu.Lock()
	p := sw.ports.byID(id)
	if p == nil || !p.state.CompareAndSwap(portAttached, portDraining) {
		sw.mu.Unlock()
		return fmt.Errorf("remove port %d: no such attached port", id)
	}
	sw.fdb.forget(p.slot)
	sw.ports.changed()
	running := sw.running.Load()
	sw.mu.Unlock()
	if !running {
		sw.finishPort(p)
		return nil
	}
	<-p.closed
	return nil
}

// finishPort closes a draining port's drivers and takes back every frame
// they hold (ReleaseDriver); used when the switch is stopped.
func (sw *Switch) finishPort(p *Port) {
	p.rxClosed.Store(^uint64(0))
	for _, d := range p.queues {
		ReleaseDriver(d, sw.arena)
	}
	sw.ports.gone(p)
}

// Ports returns the ports attached now (or draining after a detach).
func (sw *Switch) Ports() []*Port {
	return append([]*Port(nil), sw.ports.active()...)
}

// ---- callouts and filters ----

// RegisterCallout registers a callout (FwpsCalloutRegister) and creates its
// L2 injection handle. Only while the switch is stopped.
func (sw *Switch) RegisterCallout(c *Callout) error {
	if c == nil || c.Name == "" || c.Classify == nil {
		return fmt.Errorf("register callout: a callout with a name and Classify is required")
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.running.Load() {
		return fmt.Errorf("register callout %q: %w", c.Name, ErrRunning)
	}
	if sw.closed.Load() {
		return fmt.Errorf("register callout %q: %w", c.Name, ErrClosed)
	}
	if sw.callouts[c.Name] != nil {
		return fmt.Errorf("register callout %q: name in use", c.Name)
	}
	h, st := sw.eng.InjectionHandleCreate(inject.AFUnspec, inject.InjectionTypeL2)
	if st != inject.StatusSuccess {
		return fmt.Errorf("register callout %q: create injection handle: %w", c.Name, st)
	}
	ce := &calloutEntry{c: c, id: len(sw.calloutList), handle: h}
	sw.callouts[c.Name] = ce
	sw.calloutList = append(sw.calloutList, ce)
	return nil
}

// Handle returns the injection handle of a registered callout, or nil.
func (sw *Switch) Handle(callout string) *inject.Handle {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if ce := sw.callouts[callout]; ce != nil {
		return ce.handle
	}
	return nil
}

// SetFilters replaces the filter set of both layers and gives every filter
// a new id. The stages take the new set from their next batch: every
// packet is classified by the old set or the new one, whole. Any time,
// also while traffic flows.
func (sw *Switch) SetFilters(filters []Filter) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	next := append([]Filter(nil), filters...)
	for i := range next {
		next[i].ID = sw.nextFilterID + uint64(i) + 1
	}
	if err := sw.setFilters(next); err != nil {
		return err
	}
	sw.nextFilterID += uint64(len(next))
	return nil
}

// setFilters compiles and installs filters, whose ids are set; mu must be
// held.
func (sw *Switch) setFilters(filters []Filter) error {
	fs, err := compileFilters(filters, sw.callouts)
	if err != nil {
		return fmt.Errorf("set filters: %w", err)
	}
	sw.filterSrc = filters
	sw.filters.Store(fs)
	return nil
}

// Filters returns the filters in force, with their ids.
func (sw *Switch) Filters() []Filter {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return append([]Filter(nil), sw.filterSrc...)
}

// AddFilter adds one filter to the set and returns its id, as
// FwpmFilterAdd0 does; it applies from the stages' next batch.
func (sw *Switch) AddFilter(f Filter) (uint64, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	f.ID = sw.nextFilterID + 1
	if err := sw.setFilters(append(append([]Filter(nil), sw.filterSrc...), f)); err != nil {
		return 0, err
	}
	sw.nextFilterID++
	return f.ID, nil
}

// ErrNoFilter is returned by DeleteFilter for an id no filter in force has.
var ErrNoFilter = errors.New("no filter with that id")

// DeleteFilter removes the filter with id, as FwpmFilterDeleteById0 does;
// it applies from the stages' next batch.
func (sw *Switch) DeleteFilter(id uint64) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	for i, f := range sw.filterSrc {
		if f.ID == id {
			next := append(append([]Filter(nil), sw.filterSrc[:i]...), sw.filterSrc[i+1:]...)
			return sw.setFilters(next)
		}
	}
	return fmt.Errorf("delete filter %d: %w", id, ErrNoFilter)
}
