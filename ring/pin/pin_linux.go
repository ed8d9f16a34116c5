// Package pin pins the calling goroutine to one CPU: runtime.LockOSThread
// plus sched_setaffinity on the locked thread. Every pinned stage of the
// dataplane, and every pinned benchmark, starts with Thread.
package pin

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Thread locks the calling goroutine to its OS thread and restricts that
// thread to cpu. The returned function restores the thread's previous CPU
// mask and unlocks it; call it on the same goroutine, once. A cpu < 0 only
// locks the thread.
func Thread(cpu int) (unpin func(), err error) {
	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("pin: get affinity: %w", err)
	}
	if cpu >= 0 {
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("pin to cpu %d: %w", cpu, err)
		}
	}
	return func() {
		// Restore before unlocking: the thread goes back to the runtime's
		// pool and must not stay confined to one CPU.
		_ = unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}, nil
}

// CPUs returns the CPUs this process may run on, in ascending order.
func CPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("pin: get affinity: %w", err)
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}
