package aggregation

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A second process (here: a second open file, which flock treats the same) waits for the first
// one's setup instead of running its own, says so in its log, and proceeds once the lock is freed.
func TestLockEntryMakesASecondSetupWait(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache", "entry")
	unlockFirst, err := LockEntry(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log bytes.Buffer
	got := make(chan func())
	go func() {
		unlock, err := LockEntry(dir, writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return log.Write(p)
		}))
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- unlock
	}()
	select {
	case <-got:
		t.Fatal("the second LockEntry returned while the first held the lock")
	case <-time.After(300 * time.Millisecond):
	}
	mu.Lock()
	if !strings.Contains(log.String(), "waiting for it") {
		t.Errorf("the waiting process does not say why it waits: %q", log.String())
	}
	mu.Unlock()
	unlockFirst()
	select {
	case unlock := <-got:
		if unlock == nil {
			t.Fatal("second LockEntry failed")
		}
		unlock()
	case <-time.After(5 * time.Second):
		t.Fatal("the second LockEntry did not get the lock after the first released it")
	}
	// released again: a third lock is immediate and silent
	var quiet bytes.Buffer
	unlock, err := LockEntry(dir, &quiet)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if quiet.Len() != 0 {
		t.Errorf("an uncontended lock logged %q", quiet.String())
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
