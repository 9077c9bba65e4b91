package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/clockd/clockd/ingest"
)

// The local event sources: tailed trace files and a Unix socket. Each
// feeds the pipeline without waiting for commits; what the cluster cannot
// take yet waits in the spool.

// sourceBatch bounds how many events a source hands the pipeline at once.
const sourceBatch = 1024

// sourceLinger bounds how long an event read from a source waits for
// others to fill its batch: a trace file grows and a socket stays open
// for as long as their writers run, so a batch that waited to fill would
// hold a quiet source's events indefinitely, and stamp them late.
const sourceLinger = 5 * time.Millisecond

// feed reads p to its end, handing the pipeline batches of events: a
// batch goes when it is full, or sourceLinger after its first event. skip
// may adjust an event, and drops it by returning true (a file read again
// after a restart skips what was committed).
//
// p is read on a goroutine of its own, since its reads block until the
// writer writes; it ends with p (its reader is closed, or ends, when ctx
// does).
func (d *Daemon) feed(ctx context.Context, p ingest.Parser, skip func(*ingest.Event) bool) error {
	events := make(chan ingest.Event, sourceBatch)
	var readErr error // set before events is closed
	go func() {
		defer close(events)
		for {
			e, err := p.Next()
			if err != nil {
				readErr = err
				return
			}
			if skip != nil && skip(&e) {
				continue
			}
			if err := checkNames(&e); err != nil {
				d.events.refused.Add(1)
				d.log.Warn("trace event refused", zap.Uint64("source-seq", e.SourceSeq), zap.Error(err))
				continue
			}
			select {
			case events <- e:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
		}
	}()
	batch := make([]ingest.Event, 0, sourceBatch)
	linger := time.NewTimer(sourceLinger)
	linger.Stop()
	defer linger.Stop()
	flush := func() {
		linger.Stop()
		if len(batch) > 0 {
			d.events.stamp(batch)
			// The wait for room ends at the latest when the pipeline
			// stops and moves what it holds to the spool.
			d.events.add(context.WithoutCancel(ctx), batch, nil)
			batch = make([]ingest.Event, 0, sourceBatch)
		}
	}
	for {
		select {
		case e, ok := <-events:
			if !ok {
				flush()
				if errors.Is(readErr, io.EOF) {
					return nil
				}
				return readErr
			}
			batch = append(batch, e)
			if len(batch) == 1 {
				linger.Reset(sourceLinger)
			}
			if len(batch) == cap(batch) {
				flush()
			}
		case <-linger.C:
			flush()
		}
	}
}

// socketSource accepts local processes on a Unix socket; each connection
// writes JSON-lines events (ingest.DefaultJSONMapping). A connection's
// events are the source "socket/<pid>" (from the peer's credentials; a
// "source" field is kept as an attribute), numbered in the order written.
type socketSource struct {
	d   *Daemon
	lis *net.UnixListener
}

func (d *Daemon) openSocketSource() (*socketSource, error) {
	path := d.cfg.IngestSocket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("ingest_socket: %w", err)
	}
	// A socket left by an earlier run is removed; one that answers
	// belongs to a running process, whose socket is not taken over.
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("ingest_socket: %s is in use: another process listens on it", path)
	}
	os.Remove(path)
	lis, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("ingest_socket: %w", err)
	}
	// Local processes of the clockd group may write events.
	if err := os.Chmod(path, 0o660); err != nil {
		lis.Close()
		return nil, fmt.Errorf("ingest_socket: %w", err)
	}
	return &socketSource{d: d, lis: lis}, nil
}

func (s *socketSource) Name() string { return "ingest socket" }

func (s *socketSource) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.lis.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := s.lis.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			go func() {
				<-ctx.Done()
				c.Close()
			}()
			s.serveConn(ctx, c)
		}()
	}
}

func (s *socketSource) serveConn(ctx context.Context, c *net.UnixConn) {
	name := "socket/" + peerPID(c)
	opts := ingest.Options{File: name, Host: s.d.cfg.HostName, OnError: func(le *ingest.LineError) {
		s.d.log.Warn("malformed event on the ingest socket", zap.String("source", name), zap.Error(le))
	}}
	p := ingest.NewJSONLines(c, opts, ingest.DefaultJSONMapping())
	// A process that reconnects starts counting again: number its events
	// on this host instead, after everything committed for its source.
	renumber := func(e *ingest.Event) bool { e.SourceSeq = 0; return false }
	if err := s.d.feed(ctx, p, renumber); err != nil && ctx.Err() == nil {
		s.d.log.Warn("ingest socket connection failed", zap.String("source", name), zap.Error(err))
	}
}

// peerPID names the writing process, or "unknown".
func peerPID(c *net.UnixConn) string {
	raw, err := c.SyscallConn()
	if err != nil {
		return "unknown"
	}
	pid := "unknown"
	raw.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			pid = fmt.Sprint(cred.Pid)
		}
	})
	return pid
}

// fileSource tails one trace file. The file is read from its start: the
// events' sequence numbers are their places in the file, and the ones
// already committed are skipped, so a restart neither loses nor repeats
// events. A file replaced by rotation (another inode) is a new source.
type fileSource struct {
	d      *Daemon
	path   string
	format ingest.Format // "" detects
}

func (d *Daemon) fileSources() ([]*fileSource, error) {
	var out []*fileSource
	for _, spec := range d.cfg.IngestFiles {
		path, format := spec, ingest.Format("")
		if i := strings.LastIndex(spec, ":"); i > 0 {
			f, err := ingest.ParseFormat(spec[i+1:])
			if err != nil {
				return nil, fmt.Errorf("ingest_files %q: %w", spec, err)
			}
			path, format = spec[:i], f
		}
		out = append(out, &fileSource{d: d, path: path, format: format})
	}
	return out, nil
}

func (f *fileSource) Name() string { return "tail " + f.path }

// Serve follows the file, and after a failure (the file is missing, or
// unreadable) tries again every second. A failure is logged when it
// differs from the one before, so a file that does not exist yet is one
// warning, not one a second.
func (f *fileSource) Serve(ctx context.Context) error {
	last := ""
	for ctx.Err() == nil {
		err := f.follow(ctx)
		switch {
		case err != nil && ctx.Err() == nil && err.Error() != last:
			f.d.log.Warn("tailing a trace file failed; retrying every second", zap.String("path", f.path), zap.Error(err))
			last = err.Error()
		case err == nil:
			last = ""
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// follow reads the file until it is replaced or ctx ends.
func (f *fileSource) follow(ctx context.Context) error {
	fh, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	ino := st.Sys().(*syscall.Stat_t).Ino
	source := fmt.Sprintf("%s#%d", f.path, ino)
	r := &tailReader{ctx: ctx, f: fh, path: f.path, ino: ino}
	format := f.format
	if format == "" {
		head := make([]byte, 4096)
		n, _ := io.ReadFull(r, head)
		format, err = ingest.Detect(head[:n])
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		r.prefix = head[:n]
	}
	opts := ingest.Options{File: f.path, Host: f.d.cfg.HostName, OnError: func(le *ingest.LineError) {
		f.d.log.Warn("malformed trace record", zap.Error(le))
	}}
	p, err := ingest.Open(r, opts, format)
	if err != nil {
		return err
	}
	// Every event of the file is one source, numbered in file order.
	var seq uint64
	renumber := &renumbered{p: p, source: source, seq: &seq}
	committed := f.d.machine.SourceSeq(f.d.cfg.HostName, source)
	return f.d.feed(ctx, renumber, func(e *ingest.Event) bool { return e.SourceSeq <= committed })
}

// renumbered makes a whole file one source, numbered in file order.
type renumbered struct {
	p      ingest.Parser
	source string
	seq    *uint64
}

func (r *renumbered) Next() (ingest.Event, error) {
	e, err := r.p.Next()
	if err != nil {
		return e, err
	}
	*r.seq++
	e.Source, e.SourceSeq = r.source, *r.seq
	return e, nil
}

// tailReader reads a growing file: at its end it waits for more, and ends
// (io.EOF) once the path names another file or the file was truncated.
type tailReader struct {
	ctx    context.Context
	f      *os.File
	path   string
	ino    uint64
	off    int64
	prefix []byte // bytes read ahead for format detection
}

func (t *tailReader) Read(b []byte) (int, error) {
	if len(t.prefix) > 0 {
		n := copy(b, t.prefix)
		t.prefix = t.prefix[n:]
		return n, nil
	}
	for {
		n, err := t.f.Read(b)
		t.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if t.replaced() {
			return 0, io.EOF
		}
		select {
		case <-t.ctx.Done():
			return 0, io.EOF
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (t *tailReader) replaced() bool {
	st, err := os.Stat(t.path)
	if err != nil {
		return true
	}
	return st.Sys().(*syscall.Stat_t).Ino != t.ino || st.Size() < t.off
}
