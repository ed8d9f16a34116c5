// Package ring provides the lock-free rings that connect the dataplane's
// pinned stages.
//
// The shape is DPDK's rte_ring, in Go types:
//
//   - SPSC[T] is the workhorse between two pinned stages: one producer
//     goroutine, one consumer goroutine, no read-modify-write instruction at
//     all. Each side keeps its own index on its own cache line together with a
//     cached copy of the other side's index, so the shared atomic is touched
//     once per burst, and only when the cached copy says the ring looks full
//     (producer) or empty (consumer).
//   - MPSC[T] is for fan-in (completions, injections from callout workers):
//     any number of producer goroutines, one consumer. Producers reserve a run
//     of slots with one compare-and-swap and publish the whole run with one
//     release store in the run's first slot, so a producer that is preempted
//     between reserving and publishing (Go goroutines are preemptible, DPDK
//     lcores are not) never blocks the other producers and never loses or
//     duplicates an element: the consumer simply stops at the unpublished run
//     and finds it on a later call.
//
// Both rings use DPDK's naming grid: EnqueueBulk/DequeueBulk move all n
// elements or none, EnqueueBurst/DequeueBurst move up to n; all four return
// the number moved and never block. Sizes are powers of two, checked by the
// constructor; indices are free-running uint32 values masked only on array
// access. The size is also the capacity: a ring of size 1024 holds 1024
// elements (unlike rte_ring, which keeps one slot empty).
//
// The sub-package pin pins the calling goroutine's OS thread to a CPU, which
// is how every stage, and every benchmark here, runs.
package ring
