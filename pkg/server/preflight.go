package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datastore"
)

// preflight runs every check that can fail on user input before anything
// in the data dir is created or changed.
func preflight(cfg *config.Server, paths config.Paths) error {
	// A running server holds the port too: name the real cause first.
	if err := checkNotLocked(paths.LockFile); err != nil {
		return err
	}
	if err := checkWritable(cfg.DataDir); err != nil {
		return err
	}
	if cfg.DatastoreEndpoint == "" {
		if err := datastore.CheckSQLiteFile(paths.SQLiteFile); err != nil {
			return err
		}
	}
	return checkPortFree(cfg.BindAddress, cfg.HTTPSListenPort)
}

// checkWritable finds the nearest existing ancestor of dir and checks we
// may create files in it, so an unwritable --data-dir is reported by name
// instead of failing halfway through writing certificates.
func checkWritable(dir string) error {
	p := filepath.Clean(dir)
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("data dir %s cannot be used: %s is not a directory; pick another --data-dir", dir, p)
			}
			if err := unix.Access(p, unix.W_OK); err != nil {
				return fmt.Errorf("data dir %s is not writable (%s: %v); pick another --data-dir or make it writable", dir, p, err)
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("data dir %s cannot be used (%v); pick another --data-dir", dir, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("data dir %s cannot be used: no existing parent directory", dir)
		}
		p = parent
	}
}

func checkPortFree(bind string, port int) error {
	addr := net.JoinHostPort(bind, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (%v): stop the process using port %d or pick another --https-listen-port", addr, err, port)
	}
	return l.Close()
}

func checkNotLocked(lockFile string) error {
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

// dataDirLock is the first component: it creates the data dir (0700) and
// takes an exclusive lock, so a second regente on the same data dir refuses
// to start instead of sharing the datastore and certificates.
type dataDirLock struct {
	paths config.Paths
	file  *os.File
}

func (l *dataDirLock) Name() string               { return "datadir" }
func (l *dataDirLock) Init(context.Context) error { return nil }

func (l *dataDirLock) Start(context.Context) error {
	dataDir := filepath.Dir(l.paths.ServerDir)
	for _, d := range []string{dataDir, l.paths.ServerDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create data dir %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("restrict data dir %s to its owner: %w", d, err)
		}
	}
	f, err := os.OpenFile(l.paths.LockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open lock file %s: %w", l.paths.LockFile, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return errLocked(l.paths.LockFile)
	}
	l.file = f
	return nil
}

// Stop releases the lock; it is stopped last, after the datastore closed.
func (l *dataDirLock) Stop(context.Context) error {
	if l.file == nil {
		return nil
	}
	return l.file.Close()
}
