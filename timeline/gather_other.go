//go:build !linux

package timeline

import "io"

// A gatherWriter writes many slices in one system call.
type gatherWriter interface {
	// writeSlices writes the slices, in order, end to end.
	writeSlices(slices [][]byte) error
}

// newGatherWriter is nil: writes are gathered on Linux only.
func newGatherWriter(io.Writer) gatherWriter { return nil }
