package eventlog

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropCache asks the kernel to drop its cached pages of f from off for n
// bytes. Only pages already on disk are dropped; it is advice, and a
// failure loses nothing.
func dropCache(f *os.File, off, n int64) error {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
