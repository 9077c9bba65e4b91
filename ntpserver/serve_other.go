//go:build !linux

package ntpserver

// readLoop serves the socket through Go's netpoller; only Linux has the
// kernel read loop. It returns nil once the socket is closed.
func (s *Server) readLoop() error { return s.readNetpoll() }

// kernelState is empty without the kernel read loop.
type kernelState struct{}

func newKernelState() (*kernelState, error) { return nil, nil }

// release closes the socket, which ends the netpoller loop.
func (s *Server) release() error { return s.conn.Close() }
