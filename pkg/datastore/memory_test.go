package datastore

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

// kineLike makes a database with kine's table as far as the saves read it
// (id and name), in WAL mode as kine keeps it.
func kineLike(t *testing.T, path string, names ...string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal=WAL")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE kine (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, value BLOB)`); err != nil {
		t.Fatal(err)
	}
	insert(t, db, names...)
	return db
}

func insert(t *testing.T, db *sql.DB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := db.Exec(`INSERT INTO kine (name, value) VALUES (?, ?)`, n, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
}

func names(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM kine ORDER BY id`)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out = append(out, n)
	}
	return out
}

func TestLastChangeSkipsHeartbeatsAndEvents(t *testing.T) {
	mem := filepath.Join(t.TempDir(), "state.db")
	if err := createSQLite(mem); err != nil {
		t.Fatal(err)
	}
	if got, err := lastChange(mem); err != nil || got != 0 {
		t.Fatalf("before kine made its table: lastChange = %d, %v; want 0", got, err)
	}
	os.Remove(mem)
	db := kineLike(t, mem)
	if got, err := lastChange(mem); err != nil || got != 0 {
		t.Fatalf("empty database: lastChange = %d, %v; want 0", got, err)
	}
	insert(t, db, "/registry/configmaps/default/a")
	want, _ := lastChange(mem)
	insert(t, db, "/registry/leases/kube-node-lease/n1", "/registry/events/default/e1")
	if got, err := lastChange(mem); err != nil || got != want || want == 0 {
		t.Fatalf("after a lease renewal and an event: lastChange = %d, %v; want %d", got, err, want)
	}
	insert(t, db, "/registry/configmaps/default/b")
	if got, _ := lastChange(mem); got <= want {
		t.Fatalf("after a new object: lastChange = %d, want above %d", got, want)
	}
}

func TestSaveCopyReplacesTheDiskFileAndItsStaleWAL(t *testing.T) {
	dir := t.TempDir()
	mem, disk := filepath.Join(dir, "mem.db"), filepath.Join(dir, "disk", "state.db")
	kineLike(t, mem, "/registry/configmaps/default/a", "/registry/configmaps/default/b")
	if err := os.MkdirAll(filepath.Dir(disk), 0o700); err != nil {
		t.Fatal(err)
	}
	// What a run without the option left: an older database and a WAL
	// that must not be replayed into the saved copy.
	os.WriteFile(disk, []byte("old"), 0o600)
	os.WriteFile(disk+"-wal", []byte("stale frames"), 0o600)
	if err := saveCopy(mem, disk); err != nil {
		t.Fatal(err)
	}
	if got := names(t, disk); len(got) != 2 || got[1] != "/registry/configmaps/default/b" {
		t.Fatalf("saved copy holds %v", got)
	}
	if _, err := os.Stat(disk + "-wal"); err == nil {
		t.Fatal("the stale WAL is still beside the saved copy")
	}
	if fi, _ := os.Stat(disk); fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved copy has mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(disk + ".saving"); err == nil {
		t.Fatal("the temporary file of the save is left behind")
	}
}

func TestLiveSQLiteFilePrefersTheMemoryCopy(t *testing.T) {
	dir := t.TempDir()
	disk, memDir := filepath.Join(dir, "state.db"), filepath.Join(dir, "run", "datastore")
	if got := LiveSQLiteFile(disk, memDir); got != disk {
		t.Fatalf("without a memory copy: %s, want %s", got, disk)
	}
	os.MkdirAll(memDir, 0o700)
	kineLike(t, filepath.Join(memDir, memoryFileName), "/registry/configmaps/default/a")
	if got := LiveSQLiteFile(disk, memDir); got != filepath.Join(memDir, memoryFileName) {
		t.Fatalf("with a memory copy: %s", got)
	}
}
