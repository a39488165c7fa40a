package snapshot

import (
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"
)

// Info is a snapshot's sidecar: what the checksum covers.
type Info struct {
	Name    string    `json:"name"`
	Kind    string    `json:"kind"` // KindSQLite or KindEtcd
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
	// Bootstrap holds the cluster's CAs and keys, sealed with the server
	// token (SealBootstrap); it is not covered by the checksum.
	Bootstrap json.RawMessage `json:"bootstrap,omitempty"`
}

const sqliteHeader = "SQLite format 3\x00"

// SaveSQLite copies the database dbFile into dir as <name>.db with its
// sidecar, and returns the sidecar.
func SaveSQLite(dbFile, dir, name string) (*Info, error) {
	if _, err := os.Stat(dbFile); err != nil {
		return nil, fmt.Errorf("the SQLite datastore %s: %w (is this a server's --data-dir?)", dbFile, err)
	}
	out, err := prepare(dir, name)
	if err != nil {
		return nil, err
	}
	tmp := out + ".partial"
	os.Remove(tmp)
	if err := backup(dbFile, tmp); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return finish(tmp, out, name, KindSQLite)
}

// backup runs SQLite's online backup from src to the new file dst in one
// step: a single read transaction, so the copy is consistent while kine
// keeps writing.
func backup(src, dst string) error {
	drv := &sqlite3.SQLiteDriver{}
	srcConn, err := drv.Open("file:" + src + "?_busy_timeout=30000")
	if err != nil {
		return fmt.Errorf("open the datastore %s: %w", src, err)
	}
	defer srcConn.Close()
	dstConn, err := drv.Open("file:" + dst)
	if err != nil {
		return fmt.Errorf("create the snapshot %s: %w", dst, err)
	}
	defer dstConn.Close()
	b, err := dstConn.(*sqlite3.SQLiteConn).Backup("main", srcConn.(*sqlite3.SQLiteConn), "main")
	if err != nil {
		return fmt.Errorf("start the backup: %w", err)
	}
	if _, err := b.Step(-1); err != nil {
		_ = b.Finish() // the step's error is the one to report
		return fmt.Errorf("copy the datastore: %w", err)
	}
	if err := b.Finish(); err != nil {
		return fmt.Errorf("finish the backup: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	return f.Sync()
}

func describe(file, name string) (*Info, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("checksum %s: %w", file, err)
	}
	return &Info{Name: name, Kind: "sqlite", Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Created: time.Now().UTC()}, nil
}

// List returns the snapshots in dir, newest first.
func List(dir string) ([]Info, error) {
	sidecars, err := filepath.Glob(filepath.Join(dir, "*.db.json"))
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, s := range sidecars {
		var info Info
		if b, err := os.ReadFile(s); err != nil || json.Unmarshal(b, &info) != nil {
			continue
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// Delete removes the named snapshot and its sidecar.
func Delete(dir, name string) error {
	file := filepath.Join(dir, strings.TrimSuffix(name, ".db")+".db")
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("snapshot %s: %w (see etcd-snapshot ls)", name, err)
	}
	return errors.Join(os.Remove(file), os.Remove(file+".json"))
}

// Prune keeps the newest keep snapshots whose names start with prefix and
// deletes the rest; it returns the names it deleted.
func Prune(dir, prefix string, keep int) ([]string, error) {
	all, err := List(dir)
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, name := range Expired(all, prefix, keep) {
		if err := Delete(dir, name); err != nil {
			return deleted, err
		}
		deleted = append(deleted, name)
	}
	return deleted, nil
}

// Expired names the snapshots of all (newest first, as List returns
// them) that a retention of keep removes: those whose names start with
// prefix, past the newest keep of them.
func Expired(all []Info, prefix string, keep int) []string {
	var names []string
	kept := 0
	for _, s := range all {
		if !strings.HasPrefix(s.Name, prefix) {
			continue
		}
		if kept < keep {
			kept++
			continue
		}
		names = append(names, s.Name)
	}
	return names
}

// Verify checks that file is a whole, intact snapshot: its sidecar's
// checksum and size, then for SQLite the header, SQLite's integrity check
// and the kine table, for etcd etcd's own hash. It returns the sidecar.
func Verify(file string) (*Info, error) {
	info, err := readInfo(file)
	if err != nil {
		return nil, err
	}
	got, err := describe(file, info.Name)
	if err != nil {
		return nil, err
	}
	if got.Size != info.Size || got.SHA256 != info.SHA256 {
		return nil, fmt.Errorf("snapshot %s is damaged or truncated: %d bytes with sha256 %s (first 12 digits), its checksum file says %d bytes with %s",
			file, got.Size, prefix(got.SHA256), info.Size, prefix(info.SHA256))
	}
	if info.Kind == KindEtcd {
		return info, verifyEtcd(file)
	}
	return info, verifySQLite(file)
}

// prefix shortens a checksum for a message; a sidecar from elsewhere
// may hold a shorter one, or none.
func prefix(sum string) string {
	return sum[:min(len(sum), 12)]
}

func verifySQLite(file string) error {
	header := make([]byte, len(sqliteHeader))
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	_, err = io.ReadFull(f, header)
	f.Close()
	if err != nil || string(header) != sqliteHeader {
		return fmt.Errorf("snapshot %s is not an SQLite database", file)
	}
	conn, err := (&sqlite3.SQLiteDriver{}).Open("file:" + file + "?mode=ro")
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", file, err)
	}
	defer conn.Close()
	for _, check := range []struct{ query, want, fail string }{
		{"PRAGMA integrity_check", "ok", "fails SQLite's integrity check"},
		{"SELECT count(*) FROM sqlite_master WHERE type='table' AND name='kine'", "1", "is not a kine datastore (no kine table)"},
	} {
		got, err := queryOne(conn, check.query)
		if err != nil || got != check.want {
			return fmt.Errorf("snapshot %s %s (%s: %q, %v)", file, check.fail, check.query, got, err)
		}
	}
	return nil
}

func queryOne(conn driver.Conn, query string) (string, error) {
	rows, err := conn.(*sqlite3.SQLiteConn).Query(query, nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		return "", err
	}
	return fmt.Sprint(dest[0]), nil
}

// RestoreSQLite verifies snapshot and makes it the datastore dbFile. The
// database it replaces (with its WAL) is moved to a dir beside it, never
// deleted; that dir is returned.
func RestoreSQLite(snapshotFile, dbFile string) (string, error) {
	if err := checkKind(snapshotFile, KindSQLite, "this server keeps its data in SQLite: add --cluster-init to restore it into embedded etcd"); err != nil {
		return "", err
	}
	if _, err := Verify(snapshotFile); err != nil {
		return "", err
	}
	dir := filepath.Dir(dbFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	aside := filepath.Join(dir, "old-"+time.Now().UTC().Format("20060102T150405Z"))
	moved := false
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if _, err := os.Stat(dbFile + suffix); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.MkdirAll(aside, 0o700); err != nil {
			return "", err
		}
		if err := os.Rename(dbFile+suffix, filepath.Join(aside, filepath.Base(dbFile)+suffix)); err != nil {
			return "", fmt.Errorf("keep the current datastore aside: %w", err)
		}
		moved = true
	}
	if !moved {
		aside = ""
	}
	in, err := os.Open(snapshotFile)
	if err != nil {
		return aside, err
	}
	defer in.Close()
	out, err := os.OpenFile(dbFile, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return aside, fmt.Errorf("restore into %s: %w", dbFile, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return aside, fmt.Errorf("restore into %s: %w", dbFile, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return aside, err
	}
	return aside, out.Close()
}
