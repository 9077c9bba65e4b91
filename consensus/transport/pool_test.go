package transport

import (
	"testing"
)

// TestBufferPoolClasses: Get gives the length asked for, and a buffer
// goes back to a class whose every Get it can serve, its own class even
// after a frame builder cut off the room it kept for the count.
func TestBufferPoolClasses(t *testing.T) {
	var p bufferPool
	for _, n := range []int{0, 1, minPooled - 1, minPooled, minPooled + 1, 3 * minPooled, 1 << 20, DefaultMaxFrameBytes,
		minPooled << (pooledClasses - 1), minPooled<<(pooledClasses-1) + 1} {
		b := p.Get(n)
		if len(*b) != n {
			t.Fatalf("Get(%d): length %d", n, len(*b))
		}
		k := class(n)
		for cut := 0; cut <= pooledSlack; cut++ {
			c := cap(*b) - cut
			got := putClass(c)
			if got >= 0 && minPooled<<got > c {
				t.Errorf("Get(%d) cut by %d: capacity %d goes back to class %d, of %d bytes", n, cut, c, got, minPooled<<got)
			}
			if k < pooledClasses && got != k {
				t.Errorf("Get(%d) cut by %d: capacity %d goes back to class %d, want its own, %d", n, cut, c, got, k)
			}
		}
		p.Put(b)
	}
	if got := putClass(minPooled - 1); got != -1 {
		t.Errorf("a buffer under %d bytes goes back to class %d, want none", minPooled, got)
	}
}
