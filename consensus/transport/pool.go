package transport

import (
	"encoding/binary"
	"math/bits"
	"sync"
)

// framePool recycles the buffers of sent frames. A frame builder takes
// one for each frame; the codec hands the frame to gRPC with the pool
// (mem.NewBuffer), and gRPC puts it back once the frame is written. A
// leader sends its slots' commands to every follower at the rate
// clients propose them, and a fresh buffer each time is memory the
// runtime must clear and, in a VM, the kernel fault in again.
//
// Unlike gRPC's own pools, it does not clear what it gives out: a
// builder writes every byte of the frame it sends, and the bytes past a
// frame's end are never read. Buffers are kept in sync.Pools, so the
// garbage collector frees those not used since its cycle before last.
var framePool bufferPool

// Pooled buffers come in classes of capacity minPooled<<k for k below
// pooledClasses, 4 KiB to 8 MiB (above DefaultMaxFrameBytes). A new one
// has pooledSlack bytes more, so that it stays in its class when a
// frame builder cuts off the room it kept for the count and did not use.
const (
	minPooled     = 4 << 10
	pooledClasses = 12
	pooledSlack   = binary.MaxVarintLen64
)

type bufferPool struct {
	classes [pooledClasses]sync.Pool
}

// class is the smallest k with minPooled<<k >= n; pooledClasses if none.
func class(n int) int {
	if n <= minPooled {
		return 0
	}
	return bits.Len(uint((n - 1) / minPooled))
}

// Get returns a buffer of length n, its contents undefined.
func (p *bufferPool) Get(n int) *[]byte {
	k := class(n)
	if k >= pooledClasses {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.classes[k].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, minPooled<<k+pooledSlack)
	return &b
}

// Put keeps b for a later Get of up to its capacity. The caller must not
// use b afterwards.
func (p *bufferPool) Put(b *[]byte) {
	if k := putClass(cap(*b)); k >= 0 {
		*b = (*b)[:0]
		p.classes[k].Put(b)
	}
}

// putClass is the class a buffer of capacity c goes back to: the largest
// k with minPooled<<k <= c, so that it serves any Get of that class; -1
// for none.
func putClass(c int) int {
	if c < minPooled {
		return -1
	}
	if k := bits.Len(uint(c/minPooled)) - 1; k < pooledClasses {
		return k
	}
	return -1
}
