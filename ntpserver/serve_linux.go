//go:build linux

package ntpserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readLoop takes the socket from the *net.UDPConn and serves it from the
// calling goroutine, locked to its OS thread, which blocks in the kernel
// between datagrams (doc.go, "The read loop"). It returns nil once Close
// has been called.
func (s *Server) readLoop() error {
	fd, err := s.kern.take(s.conn)
	if errors.Is(err, net.ErrClosed) {
		return nil // closed before the loop started
	}
	if err != nil {
		return fmt.Errorf("ntpserver: read: %w", err)
	}
	defer s.kern.drop(fd)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return newKernelLoop(s, fd).run()
}

// release ends a kernel read loop, if one has taken the socket, and waits
// until it has closed it; otherwise it closes the *net.UDPConn, which
// ends a netpoller loop. The eventfd goes last.
func (s *Server) release() error {
	k := s.kern
	k.mu.Lock()
	k.closed = true
	taken := k.taken
	k.mu.Unlock()
	var err error
	if taken {
		k.signal()
		<-k.dropped
	} else {
		err = s.conn.Close()
	}
	_ = unix.Close(k.wakeFd)
	return err
}

// kernelState is what Close shares with the kernel read loop: who owns the
// socket, and an eventfd that interrupts the loop's poll(2).
type kernelState struct {
	wakeFd int // eventfd; readable for good once Close has begun

	mu sync.Mutex
	// closed is set by Close; no loop takes the socket after it.
	closed bool
	// taken is set by the loop that took the socket: it holds the only
	// descriptor left, a duplicate, and closes it before closing dropped.
	taken   bool
	dropped chan struct{}
}

func newKernelState() (*kernelState, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("ntpserver: eventfd: %w", err)
	}
	return &kernelState{wakeFd: fd, dropped: make(chan struct{})}, nil
}

// take duplicates conn's descriptor and closes conn, unless Close has
// begun (net.ErrClosed). Closing conn removes the socket from Go's
// netpoller, whose epoll would otherwise wake a thread of its own for
// every datagram; the duplicate keeps the socket open and bound.
func (k *kernelState) take(conn *net.UDPConn) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return -1, net.ErrClosed
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := rc.Control(func(sysfd uintptr) {
		fd, dupErr = unix.FcntlInt(sysfd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("fcntl", dupErr)
	}
	if err := conn.Close(); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	k.taken = true
	return fd, nil
}

// drop closes the loop's descriptor and lets Close return.
func (k *kernelState) drop(fd int) {
	_ = unix.Close(fd)
	close(k.dropped)
}

// signal makes the eventfd readable for good.
func (k *kernelState) signal() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(k.wakeFd, one[:])
}

// kernelLoop is the state of one readLoop: buffers reused for every
// datagram, so that the steady state allocates nothing.
type kernelLoop struct {
	s   *Server
	fd  int
	buf []byte
	out [headerLen]byte
	// from is the source address of the datagram in buf, as the kernel
	// wrote it; the reply goes back to it unchanged. fromLen is its length.
	from    unix.RawSockaddrAny
	fromLen uint32
	// waitIn and waitOut poll the socket for reading or writing, and the
	// eventfd for reading.
	waitIn, waitOut [2]unix.PollFd
}

func newKernelLoop(s *Server, fd int) *kernelLoop {
	k := &kernelLoop{s: s, fd: fd, buf: make([]byte, readBufLen)}
	wake := int32(s.kern.wakeFd)
	k.waitIn = [2]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: wake, Events: unix.POLLIN}}
	k.waitOut = [2]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}, {Fd: wake, Events: unix.POLLIN}}
	return k
}

// run reads datagrams without blocking and waits in poll(2) whenever the
// socket is empty, until Close.
func (k *kernelLoop) run() error {
	for !k.s.closing.Load() {
		n, err := k.recv()
		switch err {
		case 0:
		case unix.EAGAIN:
			if err := k.wait(&k.waitIn); err != nil {
				return fmt.Errorf("ntpserver: read: %w", err)
			}
			continue
		case unix.EINTR:
			continue
		default:
			return fmt.Errorf("ntpserver: read: %w", os.NewSyscallError("recvfrom", err))
		}
		rx := k.s.src()
		from := k.fromAddrPort()
		resp := k.s.respond(k.buf[:n], from.Addr(), time.Now(), rx, k.out[:])
		if resp != nil {
			k.send(resp, from)
		}
	}
	return nil
}

// wait blocks until the first descriptor of fds is ready, the eventfd
// fires (closing is then already set) or a signal interrupts it; the
// caller tries again in every case.
func (k *kernelLoop) wait(fds *[2]unix.PollFd) error {
	_, err := unix.Poll(fds[:], -1)
	if err != nil && err != unix.EINTR {
		return os.NewSyscallError("poll", err)
	}
	return nil
}

// send writes resp back to the datagram's source, waiting for room in the
// socket's send buffer if need be, as the netpoller loop's WriteTo does.
func (k *kernelLoop) send(resp []byte, to netip.AddrPort) {
	for {
		err := k.sendto(resp)
		switch err {
		case 0:
			return
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if k.s.closing.Load() {
				k.s.sendFailed(to, net.ErrClosed)
				return
			}
			if werr := k.wait(&k.waitOut); werr != nil {
				k.s.sendFailed(to, werr)
				return
			}
			continue
		}
		k.s.sendFailed(to, os.NewSyscallError("sendto", err))
		return
	}
}

// recv reads one datagram into buf and its source into from, without
// blocking. unix.Recvfrom would allocate the source address. recv and
// sendto never block, so they skip the scheduler's system call hooks
// (RawSyscall6): the P cannot be handed off in the middle, and the loop
// keeps it until it is back in poll(2).
func (k *kernelLoop) recv() (int, unix.Errno) {
	k.fromLen = unix.SizeofSockaddrAny
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(k.fd),
		uintptr(unsafe.Pointer(&k.buf[0])), uintptr(len(k.buf)), unix.MSG_DONTWAIT,
		uintptr(unsafe.Pointer(&k.from)), uintptr(unsafe.Pointer(&k.fromLen)))
	return int(n), errno
}

// sendto writes resp to from without blocking.
func (k *kernelLoop) sendto(resp []byte) unix.Errno {
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(k.fd),
		uintptr(unsafe.Pointer(&resp[0])), uintptr(len(resp)), unix.MSG_DONTWAIT,
		uintptr(unsafe.Pointer(&k.from)), uintptr(k.fromLen))
	return errno
}

// fromAddrPort decodes from. An IPv4 source on an IPv6 socket reads as
// its IPv4-mapped address, as from the netpoller loop; the IPv6 zone is
// left out (the limiter ignores it).
func (k *kernelLoop) fromAddrPort() netip.AddrPort {
	switch k.from.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&k.from))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), netPort(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&k.from))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), netPort(sa.Port))
	}
	return netip.AddrPort{}
}

// netPort reads a port stored in network byte order.
func netPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return binary.BigEndian.Uint16(b[:])
}
