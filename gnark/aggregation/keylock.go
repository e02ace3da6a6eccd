package aggregation

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// LockEntry takes an exclusive advisory lock on the cache entry dir (on "<dir>.lock" beside it),
// blocking while another process holds it, and returns the function that releases it.
//
// Why: a dev setup of an outer circuit takes minutes and gigabytes. Without the lock, every process
// that starts on a cold cache (two workers, a deploy and a worker, a test run warming the cache in
// the background) runs its own setup and all but one are thrown away by store()'s rename. With it,
// the first process sets up and the others wait, then load its keys. store() still tolerates
// concurrent writers (a cache on a filesystem without flock, a lock file removed by hand).
//
// flock(2) locks belong to the open file, so the kernel releases a crashed process's lock; the lock
// file itself is never removed (removing it would let two processes lock two different files).
func LockEntry(dir string, log io.Writer) (unlock func(), err error) {
	if log == nil {
		log = io.Discard
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	err = flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		fmt.Fprintf(log, "keys: another process is setting up %s; waiting for it\n", filepath.Base(dir))
		err = flock(fd, syscall.LOCK_EX)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s.lock: %w", dir, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
