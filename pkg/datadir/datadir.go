package datadir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// CheckNotLocked fails when another process holds lockFile, before
// anything is changed.
func CheckNotLocked(lockFile string) error {
	f, err := os.Open(lockFile)
	if err != nil {
		return nil // no lock file: no server has run here, or it is unreadable and lockDataDir will say so
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errLocked(lockFile)
	}
	return unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

func errLocked(lockFile string) error {
	dataDir := filepath.Dir(filepath.Dir(lockFile))
	return fmt.Errorf("another regente is already running on data dir %s (lock %s is held): stop it first or pick another --data-dir", dataDir, lockFile)
}

// Lock is the first component of a server or an agent: it creates the
// data dirs (0700) and takes an exclusive lock, so a second regente on the
// same data dir refuses to start instead of sharing its state.
type Lock struct {
	Dirs []string // created, outermost first
	File string   // the lock file, in the last of Dirs
	file *os.File
}

// Name implements component.Component.
func (l *Lock) Name() string { return "datadir" }

// Start creates the dirs and takes the lock. A lock already held is kept:
// the agent takes it before it joins, ahead of its components.
func (l *Lock) Start(context.Context) error {
	if l.file != nil {
		return nil
	}
	for _, d := range l.Dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create data dir %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("restrict data dir %s to its owner: %w", d, err)
		}
	}
	f, err := os.OpenFile(l.File, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open lock file %s: %w", l.File, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return errLocked(l.File)
	}
	l.file = f
	return nil
}

// Stop releases the lock; it is stopped last, after the datastore closed.
func (l *Lock) Stop(context.Context) error {
	if l.file == nil {
		return nil
	}
	f := l.file
	l.file = nil
	return f.Close()
}
