package ring

import (
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// ErrSize is returned by the constructors when the requested size is not a
// power of two in [2, 1<<31].
var ErrSize = errors.New("ring size must be a power of two between 2 and 2^31")

func checkSize(size int) (uint32, error) {
	if size < 2 || size > 1<<31 || size&(size-1) != 0 {
		return 0, fmt.Errorf("new ring of %d: %w", size, ErrSize)
	}
	return uint32(size), nil
}

// SPSC is a bounded single-producer single-consumer ring of T.
//
// Threading contract: exactly one goroutine calls the Enqueue methods and
// exactly one (other) goroutine calls the Dequeue methods; Len, Cap and Free
// may be called from anywhere and return a snapshot. No method blocks or
// allocates.
//
// Layout: the producer's fields, the consumer's fields and the read-only
// fields each sit on their own cache line, so the two sides only share the
// slots and the one index word each reads of the other.
type SPSC[T any] struct {
	_ cpu.CacheLinePad

	// tail is the count of elements ever enqueued. Only the producer writes
	// it (release store after the slots are written); the consumer loads it
	// with acquire semantics.
	tail atomic.Uint32
	// headCache is the producer's private copy of head, refreshed only when
	// the ring looks full. Only the producer reads or writes it.
	headCache uint32
	_         cpu.CacheLinePad

	// head is the count of elements ever dequeued. Only the consumer writes
	// it (release store after the slots are read); the producer loads it
	// with acquire semantics.
	head atomic.Uint32
	// tailCache is the consumer's private copy of tail, refreshed only when
	// the ring looks empty. Only the consumer reads or writes it.
	tailCache uint32
	_         cpu.CacheLinePad

	// mask is size-1; slots has len size. Both are set by the constructor
	// and never written again.
	mask  uint32
	slots []T
	_     cpu.CacheLinePad
}

// NewSPSC returns an empty ring holding up to size elements; size must be a
// power of two.
func NewSPSC[T any](size int) (*SPSC[T], error) {
	n, err := checkSize(size)
	if err != nil {
		return nil, err
	}
	return &SPSC[T]{mask: n - 1, slots: make([]T, n)}, nil
}

// Cap returns the number of elements the ring can hold.
func (r *SPSC[T]) Cap() int { return len(r.slots) }

// Len returns a snapshot of the number of elements in the ring.
func (r *SPSC[T]) Len() int {
	h := r.head.Load()
	t := r.tail.Load()
	return int(t - h)
}

// Free returns a snapshot of the number of free slots.
func (r *SPSC[T]) Free() int { return r.Cap() - r.Len() }

// producerSpace returns how many elements the producer may write at tail t,
// refreshing the cached head only when the cache says fewer than want.
func (r *SPSC[T]) producerSpace(t uint32, want int) int {
	space := int(r.mask + 1 - (t - r.headCache))
	if space < want {
		// Acquire pairs with the consumer's release-store of head: the
		// consumer has finished reading every slot below head.
		r.headCache = r.head.Load()
		space = int(r.mask + 1 - (t - r.headCache))
	}
	return space
}

// consumerAvail returns how many elements the consumer may read at head h,
// refreshing the cached tail only when the cache says fewer than want.
func (r *SPSC[T]) consumerAvail(h uint32, want int) int {
	avail := int(r.tailCache - h)
	if avail < want {
		// Acquire pairs with the producer's release-store of tail: every
		// slot below tail has been written.
		r.tailCache = r.tail.Load()
		avail = int(r.tailCache - h)
	}
	return avail
}

// EnqueueBurst copies up to len(src) elements into the ring and returns how
// many it copied. It does not block. Producer side only.
func (r *SPSC[T]) EnqueueBurst(src []T) int {
	t := r.tail.Load() // only we write tail: no ordering needed
	n := min(len(src), r.producerSpace(t, len(src)))
	if n <= 0 {
		return 0
	}
	r.put(t, src[:n])
	// Release pairs with the consumer's acquire-load of tail.
	r.tail.Store(t + uint32(n))
	return n
}

// EnqueueBulk copies all of src into the ring, or nothing if it does not
// fit, and returns len(src) or 0. It does not block. Producer side only.
func (r *SPSC[T]) EnqueueBulk(src []T) int {
	t := r.tail.Load()
	if len(src) == 0 || r.producerSpace(t, len(src)) < len(src) {
		return 0
	}
	r.put(t, src)
	r.tail.Store(t + uint32(len(src))) // release; see EnqueueBurst
	return len(src)
}

// DequeueBurst moves up to len(dst) elements from the ring into dst and
// returns how many it moved. It does not block. Consumer side only.
func (r *SPSC[T]) DequeueBurst(dst []T) int {
	h := r.head.Load() // only we write head
	n := min(len(dst), r.consumerAvail(h, len(dst)))
	if n <= 0 {
		return 0
	}
	r.get(h, dst[:n])
	// Release pairs with the producer's acquire-load of head: the slots
	// below the new head may now be overwritten.
	r.head.Store(h + uint32(n))
	return n
}

// DequeueBulk moves exactly len(dst) elements into dst, or nothing if fewer
// are available, and returns len(dst) or 0. Consumer side only.
func (r *SPSC[T]) DequeueBulk(dst []T) int {
	h := r.head.Load()
	if len(dst) == 0 || r.consumerAvail(h, len(dst)) < len(dst) {
		return 0
	}
	r.get(h, dst)
	r.head.Store(h + uint32(len(dst))) // release; see DequeueBurst
	return len(dst)
}

// put writes src into the slots starting at free-running index at, in at
// most two copies (the two halves around the end of the array).
func (r *SPSC[T]) put(at uint32, src []T) {
	i := int(at & r.mask)
	c := copy(r.slots[i:], src)
	if c < len(src) {
		copy(r.slots, src[c:])
	}
}

// get reads len(dst) slots starting at free-running index at.
func (r *SPSC[T]) get(at uint32, dst []T) {
	i := int(at & r.mask)
	c := copy(dst, r.slots[i:])
	if c < len(dst) {
		copy(dst[c:], r.slots)
	}
}
