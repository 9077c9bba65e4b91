//go:build !linux

package eventlog

import "os"

// dropCache does nothing here: the page cache is left to the kernel.
func dropCache(*os.File, int64, int64) error { return nil }

// startWriteback does nothing here: writeback is left to the kernel and
// to Sync.
func startWriteback(*os.File, int64, int64) error { return nil }
