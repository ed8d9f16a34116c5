package dataplane

// ticks returns the CPU's time-stamp counter (RDTSC). The kernel uses the
// TSC as its clock only where it is invariant and in step across CPUs;
// where it is not, the figures BusyMeter reports from it are unreliable.
func ticks() int64

const haveTSC = true
