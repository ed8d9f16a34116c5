package nbl

// Link chains batch through Next in order and returns the head (nil for an
// empty batch). The last list's Next is set to nil.
func Link(batch []*NBL) *NBL {
	if len(batch) == 0 {
		return nil
	}
	for i := 0; i < len(batch)-1; i++ {
		batch[i].Next = batch[i+1]
	}
	batch[len(batch)-1].Next = nil
	return batch[0]
}

// Count returns the number of lists in the chain starting at head.
func Count(head *NBL) int {
	n := 0
	for ; head != nil; head = head.Next {
		n++
	}
	return n
}

// Split appends the lists of the chain starting at head to dst, cutting
// every Next, and returns the extended slice. It stops when dst is full
// (len == cap) and returns the rest of the chain, still linked, as rest.
func Split(head *NBL, dst []*NBL) (batch []*NBL, rest *NBL) {
	for head != nil && len(dst) < cap(dst) {
		next := head.Next
		head.Next = nil
		dst = append(dst, head)
		head = next
	}
	return dst, head
}
