package ring

import (
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// mpscSlot is one element of an MPSC ring plus the word that publishes the
// run of elements starting here.
type mpscSlot[T any] struct {
	// seq == pos+1 says a producer has published the run that starts at
	// free-running position pos, and runLen says how long it is. The
	// consumer writes seq = pos once it has taken the run, a value no
	// producer ever publishes for this slot (pos+1 differs from any position
	// of this slot modulo the even ring size), so a stale seq can never
	// look published.
	seq    atomic.Uint32
	runLen uint32
	val    T
}

// MPSC is a bounded multi-producer single-consumer ring of T.
//
// Threading contract: any number of goroutines may call the Enqueue methods
// concurrently; exactly one goroutine calls the Dequeue methods. No method
// blocks or allocates.
//
// Producers are lock-free: a producer reserves a run of slots with one
// compare-and-swap on tail, writes them, then publishes the run with one
// release store in the run's first slot. Producers never wait for each
// other, so one preempted between reserving and publishing delays only the
// elements behind its run (the consumer stops at the unpublished run and
// picks it up on a later call); nothing is lost, duplicated or deadlocked.
// Each producer's elements are dequeued in the order it enqueued them.
type MPSC[T any] struct {
	_ cpu.CacheLinePad

	// tail is the next free-running position to reserve. Producers advance
	// it with compare-and-swap.
	tail atomic.Uint32
	_    cpu.CacheLinePad

	// head is the count of elements the consumer has finished with. Only the
	// consumer writes it (release); producers load it (acquire) to check
	// for space.
	head atomic.Uint32
	// ready is the end of the published runs the consumer has already seen
	// (head <= ready). Only the consumer reads or writes it.
	ready uint32
	_     cpu.CacheLinePad

	mask  uint32 // size-1; read-only after construction
	slots []mpscSlot[T]
	_     cpu.CacheLinePad
}

// NewMPSC returns an empty ring holding up to size elements; size must be a
// power of two.
func NewMPSC[T any](size int) (*MPSC[T], error) {
	n, err := checkSize(size)
	if err != nil {
		return nil, err
	}
	r := &MPSC[T]{mask: n - 1, slots: make([]mpscSlot[T], n)}
	for i := range r.slots {
		// pos i is not published until seq == i+1.
		r.slots[i].seq.Store(uint32(i))
	}
	return r, nil
}

// Cap returns the number of elements the ring can hold.
func (r *MPSC[T]) Cap() int { return len(r.slots) }

// Len returns a snapshot of the number of elements reserved or published and
// not yet dequeued.
func (r *MPSC[T]) Len() int {
	h := r.head.Load()
	t := r.tail.Load()
	return int(t - h)
}

// Free returns a snapshot of the number of free slots.
func (r *MPSC[T]) Free() int { return r.Cap() - r.Len() }

// reserve claims up to want positions (exactly want if bulk) and returns the
// first position and the count claimed.
func (r *MPSC[T]) reserve(want int, bulk bool) (uint32, int) {
	size := r.mask + 1
	for {
		t := r.tail.Load()
		// Acquire pairs with the consumer's release-store of head: slots
		// below head are free to overwrite.
		h := r.head.Load()
		space := int(size - (t - h))
		if space > int(size) { // h moved past this stale t; reload
			continue
		}
		n := min(want, space)
		if n <= 0 || (bulk && n < want) {
			return 0, 0
		}
		if r.tail.CompareAndSwap(t, t+uint32(n)) {
			return t, n
		}
	}
}

func (r *MPSC[T]) enqueue(src []T, bulk bool) int {
	if len(src) == 0 {
		return 0
	}
	pos, n := r.reserve(len(src), bulk)
	if n == 0 {
		return 0
	}
	for i := 0; i < n; i++ {
		r.slots[(pos+uint32(i))&r.mask].val = src[i]
	}
	first := &r.slots[pos&r.mask]
	first.runLen = uint32(n)
	// Release pairs with the consumer's acquire-load of seq: the run's
	// values and runLen are visible before the run is.
	first.seq.Store(pos + 1)
	return n
}

// EnqueueBurst copies up to len(src) elements into the ring and returns how
// many it copied. Safe for concurrent producers; does not block.
func (r *MPSC[T]) EnqueueBurst(src []T) int { return r.enqueue(src, false) }

// EnqueueBulk copies all of src or nothing and returns len(src) or 0. Safe
// for concurrent producers; does not block.
func (r *MPSC[T]) EnqueueBulk(src []T) int { return r.enqueue(src, true) }

// published extends r.ready over every run published from it on, until an
// unpublished run or want elements are known; it returns ready-head.
func (r *MPSC[T]) published(h uint32, want int) int {
	for int(r.ready-h) < want {
		s := &r.slots[r.ready&r.mask]
		// Acquire pairs with the producer's release-store of seq.
		if s.seq.Load() != r.ready+1 {
			break
		}
		// Invalidate: the next time this slot is examined it must be
		// published afresh. Ordered before head moves past it.
		s.seq.Store(r.ready)
		r.ready += s.runLen
	}
	return int(r.ready - h)
}

func (r *MPSC[T]) dequeue(dst []T, bulk bool) int {
	if len(dst) == 0 {
		return 0
	}
	h := r.head.Load() // only we write head
	avail := r.published(h, len(dst))
	n := min(len(dst), avail)
	if n == 0 || (bulk && n < len(dst)) {
		return 0
	}
	for i := 0; i < n; i++ {
		s := &r.slots[(h+uint32(i))&r.mask]
		dst[i] = s.val
	}
	// Release pairs with the producers' acquire-load of head.
	r.head.Store(h + uint32(n))
	return n
}

// DequeueBurst moves up to len(dst) published elements into dst and returns
// how many. Consumer side only; does not block.
func (r *MPSC[T]) DequeueBurst(dst []T) int { return r.dequeue(dst, false) }

// DequeueBulk moves exactly len(dst) elements or none. Consumer side only.
func (r *MPSC[T]) DequeueBulk(dst []T) int { return r.dequeue(dst, true) }
