package ring_test

import (
	"fmt"

	"github.com/wfpxdp/wfpxdp/ring"
)

// Two stages connected by an SPSC ring move batches, never single items.
func ExampleSPSC() {
	r, err := ring.NewSPSC[int](8)
	if err != nil {
		panic(err)
	}
	n := r.EnqueueBurst([]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) // only 8 fit
	fmt.Println("enqueued", n)
	fmt.Println("bulk of 3 more:", r.EnqueueBulk([]int{11, 12, 13})) // all or nothing
	batch := make([]int, 5)
	n = r.DequeueBurst(batch)
	fmt.Println("dequeued", batch[:n], "left", r.Len())
	// Output:
	// enqueued 8
	// bulk of 3 more: 0
	// dequeued [1 2 3 4 5] left 3
}

// Several producers fan in to one consumer.
func ExampleMPSC() {
	r, _ := ring.NewMPSC[string](16)
	done := make(chan bool)
	for _, name := range []string{"a", "b"} {
		go func() {
			r.EnqueueBulk([]string{name + "1", name + "2"})
			done <- true
		}()
	}
	<-done
	<-done
	got := make([]string, 16)
	fmt.Println(r.DequeueBurst(got), "elements")
	// Output: 4 elements
}
