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

// startWriteback starts writing f's dirty pages from off for n bytes to
// the disk, without waiting for them (sync_file_range WRITE): a later
// Sync then has little left to write.
func startWriteback(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
