package timeline

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// newGatherWriter is w as a gatherWriter when it is an *os.File, else
// nil.
func newGatherWriter(w io.Writer) gatherWriter {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	return &fileGatherWriter{f: f, rc: rc}
}

// fileGatherWriter writes to a file with writev. It builds the iovecs
// itself, in a slice it keeps, rather than calling unix.Writev, which
// allocates them anew on every call: a merge makes thousands of calls of
// up to 1,024 slices.
type fileGatherWriter struct {
	f   *os.File
	rc  syscall.RawConn
	iov []syscall.Iovec
}

// maxIovecs is the most iovecs a writev takes (IOV_MAX).
const maxIovecs = 1024

func (g *fileGatherWriter) writeSlices(slices [][]byte) error {
	iov := g.iov[:0]
	for _, s := range slices {
		if len(s) > 0 {
			v := syscall.Iovec{Base: &s[0]}
			v.SetLen(len(s))
			iov = append(iov, v)
		}
	}
	g.iov = iov
	defer clear(iov) // keep no pointer into the slices
	for len(iov) > 0 {
		batch := iov[:min(len(iov), maxIovecs)]
		var n uintptr
		var errno syscall.Errno
		err := g.rc.Write(func(fd uintptr) bool {
			n, _, errno = syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&batch[0])), uintptr(len(batch)))
			return errno != syscall.EAGAIN
		})
		switch {
		case err != nil:
			return &os.PathError{Op: "writev", Path: g.f.Name(), Err: err}
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			return &os.PathError{Op: "writev", Path: g.f.Name(), Err: errno}
		case n == 0:
			return &os.PathError{Op: "writev", Path: g.f.Name(), Err: io.ErrShortWrite}
		}
		// Drop what was written: whole iovecs, then the start of one.
		for n > 0 {
			if l := uintptr(iov[0].Len); n >= l {
				n -= l
				iov = iov[1:]
				continue
			}
			iov[0].Base = (*byte)(unsafe.Add(unsafe.Pointer(iov[0].Base), n))
			iov[0].SetLen(int(uintptr(iov[0].Len) - n))
			n = 0
		}
	}
	return nil
}
