package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/datadir"
	"regente.io/regente/pkg/datastore"
)

// preflight runs every check that can fail on user input before anything
// in the data dir is created or changed.
func preflight(cfg *config.Server, paths datadir.ServerPaths) error {
	// A running server holds the port too: name the real cause first.
	if err := datadir.CheckNotLocked(paths.LockFile); err != nil {
		return err
	}
	if err := checkWritable(cfg.DataDir); err != nil {
		return err
	}
	if cfg.Datastore.OwnSQLite() {
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
