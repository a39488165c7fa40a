package datastore

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// With --datastore-in-memory (Config.InMemory) the live SQLite database
// sits on a tmpfs and the file in the data dir is only written by saves,
// each one sequential write of the whole (compacted) database instead of
// the WAL's steady stream of small synced writes, which wear cheap flash
// the most. What changed after the last save is lost if the machine
// crashes or loses power; a regente process that is killed leaves the
// tmpfs copy, and the next start uses it.

// memoryFileName is the live database's name on the tmpfs.
const memoryFileName = "state.db"

// lastChangeQuery finds the newest row that is neither a lease renewal
// nor an event. A save that would add only those is skipped: leases are
// renewed within seconds of a restart and events are ephemeral, while an
// idle node renews its leases every 10 s, so an idle cluster writes
// nothing between the saves that matter.
const lastChangeQuery = `SELECT id FROM kine WHERE name NOT LIKE '/registry/leases/%' AND name NOT LIKE '/registry/events/%' ORDER BY id DESC LIMIT 1`

// LiveSQLiteFile is the SQLite database a server on diskFile writes now:
// the in-memory copy in memoryDir when there is one (--datastore-in-memory,
// or a killed run that used it), else diskFile. Snapshots copy this one.
func LiveSQLiteFile(diskFile, memoryDir string) string {
	mem := filepath.Join(memoryDir, memoryFileName)
	if fi, err := os.Stat(mem); err == nil && fi.Size() > 0 {
		return mem
	}
	return diskFile
}

// SaveLeftoverMemory saves the in-memory database that a killed run with
// --datastore-in-memory left in memoryDir into diskFile, then removes it
// and unmounts its tmpfs. A start without the option, killall and a
// restore call it first, so that the newer copy is neither lost nor later
// preferred to the disk file. It reports whether there was a copy.
func SaveLeftoverMemory(memoryDir, diskFile string) (bool, error) {
	mem := filepath.Join(memoryDir, memoryFileName)
	if fi, err := os.Stat(mem); err != nil || fi.Size() == 0 {
		return false, nil
	}
	if err := saveCopy(mem, diskFile); err != nil {
		return true, fmt.Errorf("save the in-memory datastore %s that a killed run left: %w", mem, err)
	}
	return true, dropMemory(memoryDir)
}

// loadMemory mounts the tmpfs and fills it: with the copy a killed run
// left there (unsaved reports that one, newer than the disk file), else
// from the disk file, else with a new database.
func loadMemory(logger klog.Logger, dir, diskFile string) (unsaved bool, err error) {
	if err := mountTmpfs(dir); err != nil {
		return false, err
	}
	mem := filepath.Join(dir, memoryFileName)
	if fi, err := os.Stat(mem); err == nil && fi.Size() > 0 {
		logger.Info("Using the in-memory datastore that the last run left unsaved (it was killed, not stopped)", "file", mem)
		return true, nil
	}
	if fi, err := os.Stat(diskFile); err == nil && fi.Size() > 0 {
		begin := time.Now()
		if err := vacuumInto(diskFile, mem); err != nil {
			return false, fmt.Errorf("load the datastore %s into memory: %w", diskFile, err)
		}
		logger.Info("Loaded the datastore into memory", "from", diskFile, "took", time.Since(begin).Round(time.Millisecond))
		return false, nil
	}
	return false, createSQLite(mem)
}

// lastChange is the id of mem's newest row that is not a heartbeat or an
// event (lastChangeQuery); 0 in a database without one, or before kine
// has created its table.
func lastChange(mem string) (int64, error) {
	db, err := sql.Open("sqlite3", "file:"+mem+"?_busy_timeout=30000")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type='table' AND name='kine'`).Scan(&tables); err != nil || tables == 0 {
		return 0, err
	}
	var id int64
	if err := db.QueryRow(lastChangeQuery).Scan(&id); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read the datastore's last change: %w", err)
	}
	return id, nil
}

// saveCopy writes a consistent, compacted copy of mem over diskFile: into
// a temporary file beside it, synced, then renamed, so a crash during a
// save leaves the previous save whole.
func saveCopy(mem, diskFile string) error {
	if err := os.MkdirAll(filepath.Dir(diskFile), 0o700); err != nil {
		return err
	}
	tmp := diskFile + ".saving"
	os.Remove(tmp)
	if err := vacuumInto(mem, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncPath(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	// The disk file's WAL was checkpointed into it when it was loaded and
	// nothing has written it since; an old one must not be replayed into
	// the new file.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(diskFile + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(tmp, diskFile); err != nil {
		return err
	}
	return syncPath(filepath.Dir(diskFile))
}

// vacuumInto copies the database src into the new file dst with SQLite's
// VACUUM INTO: one read transaction (consistent while kine writes), free
// pages left out. A source in WAL mode is checkpointed when it closes.
func vacuumInto(src, dst string) error {
	// VACUUM INTO fills an empty file; creating it first sets its mode.
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	db, err := sql.Open("sqlite3", "file:"+src+"?_busy_timeout=30000")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec("VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return db.Close()
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// mountTmpfs mounts a tmpfs only root can enter at dir, unless one is
// there (from a killed run).
func mountTmpfs(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	var here, parent unix.Stat_t
	if err := unix.Stat(dir, &here); err != nil {
		return err
	}
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		return err
	}
	if here.Dev != parent.Dev {
		return nil
	}
	if err := unix.Mount("regente-datastore", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700"); err != nil {
		return fmt.Errorf("mount a tmpfs for the in-memory datastore at %s: %w", dir, err)
	}
	return nil
}

// dropMemory removes the in-memory database and its tmpfs, once saved.
func dropMemory(dir string) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(filepath.Join(dir, memoryFileName+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return os.Remove(dir)
}
