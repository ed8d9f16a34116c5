package dataplane

import (
	"sync/atomic"

	"github.com/wfpxdp/wfpxdp/ring"
)

// LinkKind picks what connects the stages.
type LinkKind uint8

// Link kinds: the project's rings, or Go channels carrying batches of 32
// (the baseline the benchmarks compare against).
const (
	LinkRing LinkKind = iota
	LinkChan
)

func (k LinkKind) String() string {
	if k == LinkChan {
		return "chan"
	}
	return "ring"
}

// link connects two stages; ring.SPSC and ring.MPSC satisfy it as they are.
// Neither side blocks.
type link[T any] interface {
	EnqueueBurst([]T) int
	DequeueBurst([]T) int
	Len() int
	Free() int
}

// newLink returns a link: an SPSC ring, an MPSC ring when several
// goroutines send, or a channel of batches. A ring holds at least size
// elements; a channel holds size/32 batches, however full they are (see
// newChanOneLink for one that must hold size elements).
func newLink[T any](kind LinkKind, size int, multiProducer bool) (link[T], error) {
	if kind == LinkChan {
		return newChanLink[T](size), nil
	}
	if multiProducer {
		return ring.NewMPSC[T](size)
	}
	return ring.NewSPSC[T](size)
}

// chanBatch is what a channel link carries: up to 32 elements, like the
// rings' bursts.
type chanBatch[T any] struct {
	n int
	a [32]T
}

// chanLink is the baseline: a buffered channel of batches, used
// non-blocking (select with default) so that a stage sharing an lcore with
// others never parks; that is the fastest way the channel allows here, a
// blocking receive adds a park and wake per idle period.
//
// Threading contract: any number of senders, one receiver.
type chanLink[T any] struct {
	ch    chan chanBatch[T]
	count atomic.Int64 // elements sent and not yet received
	// receiver-side leftover of the last batch; only the receiver touches it
	cur chanBatch[T]
	off int
}

func newChanLink[T any](size int) *chanLink[T] {
	return &chanLink[T]{ch: make(chan chanBatch[T], max(1, size/32))}
}

// EnqueueBurst sends src in batches of up to 32 until the channel is full.
func (c *chanLink[T]) EnqueueBurst(src []T) int {
	sent := 0
	for sent < len(src) {
		var b chanBatch[T]
		b.n = copy(b.a[:], src[sent:])
		select {
		case c.ch <- b:
			sent += b.n
		default:
			c.count.Add(int64(sent))
			return sent
		}
	}
	c.count.Add(int64(sent))
	return sent
}

// DequeueBurst receives up to len(dst) elements.
func (c *chanLink[T]) DequeueBurst(dst []T) int {
	got := 0
	for got < len(dst) {
		if c.off == c.cur.n {
			select {
			case c.cur = <-c.ch:
				c.off = 0
			default:
				c.count.Add(-int64(got))
				return got
			}
		}
		k := copy(dst[got:], c.cur.a[c.off:c.cur.n])
		c.off += k
		got += k
	}
	c.count.Add(-int64(got))
	return got
}

// Len returns the elements sent and not yet received.
func (c *chanLink[T]) Len() int { return int(c.count.Load()) }

// Free returns how many more elements fit, counting whole batches.
func (c *chanLink[T]) Free() int { return (cap(c.ch) - len(c.ch)) * 32 }

// enqueueOne puts one element into l without letting it escape to the heap
// (a slice passed through the interface would).
func enqueueOne[T any](l link[T], v T) bool {
	one := [1]T{v}
	switch r := l.(type) {
	case *ring.MPSC[T]:
		return r.EnqueueBurst(one[:]) == 1
	case *ring.SPSC[T]:
		return r.EnqueueBurst(one[:]) == 1
	case *chanLink[T]:
		return r.EnqueueBurst(one[:]) == 1
	}
	return l.EnqueueBurst([]T{v}) == 1
}

// chanOneLink is a channel link carrying single elements, so that its room
// is counted in elements: it holds size of them however they are sent. The
// channel baseline's retire link is one, because that link must be able to
// hold every descriptor there is (a channel of batches fills with batches
// of one when a stage retires lists one at a time faster than the
// completion stage on another lcore takes them).
//
// Threading contract: any number of senders, one receiver.
type chanOneLink[T any] struct{ ch chan T }

func newChanOneLink[T any](size int) *chanOneLink[T] {
	return &chanOneLink[T]{ch: make(chan T, size)}
}

func (c *chanOneLink[T]) EnqueueBurst(src []T) int {
	for i, v := range src {
		select {
		case c.ch <- v:
		default:
			return i
		}
	}
	return len(src)
}

func (c *chanOneLink[T]) DequeueBurst(dst []T) int {
	for i := range dst {
		select {
		case dst[i] = <-c.ch:
		default:
			return i
		}
	}
	return len(dst)
}

func (c *chanOneLink[T]) Len() int  { return len(c.ch) }
func (c *chanOneLink[T]) Free() int { return cap(c.ch) - len(c.ch) }
