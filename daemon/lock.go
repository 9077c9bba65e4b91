package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockFile is the file in the data directory whose lock says a clockd
// runs on it.
const lockFile = "LOCK"

// ErrDataDirInUse: another process holds the data directory's lock.
var ErrDataDirInUse = errors.New("data_dir is in use by another clockd")

// lockDataDir takes an exclusive flock(2) on dir/LOCK and writes this
// process's ID into it; the lock lasts until the returned unlock, or the
// process's end. It is the first thing a node does with its data
// directory, so that a second clockd started on it (by hand, next to the
// service) is refused before it touches anything the running one owns:
// its consensus store, its shared clock page, its ingest socket.
func lockDataDir(dir string) (unlock func() error, err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked%s", ErrDataDirInUse, path, holder(path))
		}
		return nil, fmt.Errorf("data_dir: lock %s: %w", path, err)
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data_dir: %s: %w", path, err)
	}
	return f.Close, nil // closing the file releases the lock
}

// holder names the process ID a lock file holds, for the error message.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if pid := strings.TrimSpace(string(b)); err == nil && pid != "" {
		return " by process " + pid
	}
	return ""
}
