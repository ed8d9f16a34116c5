//go:build !amd64

package dataplane

// ticks is the monotonic clock where no cheap cycle counter is read.
func ticks() int64 { return nowNS() }

const haveTSC = false
