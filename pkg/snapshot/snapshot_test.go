package snapshot

import (
	"database/sql/driver"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mattn/go-sqlite3"
)

// newDB makes an SQLite file with a kine table (or not) holding n rows.
func newDB(t testing.TB, file string, kine bool, n int) {
	t.Helper()
	conn, err := (&sqlite3.SQLiteDriver{}).Open("file:" + file + "?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := conn.(*sqlite3.SQLiteConn)
	table := "other"
	if kine {
		table = "kine"
	}
	if _, err := c.Exec("CREATE TABLE "+table+" (id INTEGER PRIMARY KEY, name TEXT)", nil); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := c.Exec("INSERT INTO "+table+" (name) VALUES (?)", []driver.Value{strings.Repeat("x", i%50)}); err != nil {
			t.Fatal(err)
		}
	}
}

func rows(t *testing.T, file string) string {
	t.Helper()
	conn, err := (&sqlite3.SQLiteDriver{}).Open("file:" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := queryOne(conn, "SELECT count(*) FROM kine")
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestSaveVerifyRestore(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db", "state.db")
	os.MkdirAll(filepath.Dir(db), 0o700)
	newDB(t, db, true, 500)
	snaps := filepath.Join(dir, "snapshots")
	info, err := SaveSQLite(db, snaps, "one")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size == 0 || len(info.SHA256) != 64 {
		t.Errorf("sidecar: %+v", info)
	}
	if _, err := SaveSQLite(db, snaps, "one"); err == nil {
		t.Error("saving over an existing snapshot succeeded")
	}
	file := filepath.Join(snaps, "one.db")
	if _, err := Verify(file); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", fi.Mode().Perm())
	}

	// The datastore moves on; the restore brings back the snapshot's state
	// and keeps the replaced database aside.
	newDBMore := func() {
		conn, _ := (&sqlite3.SQLiteDriver{}).Open("file:" + db)
		conn.(*sqlite3.SQLiteConn).Exec("INSERT INTO kine (name) VALUES ('later')", nil)
		conn.Close()
	}
	newDBMore()
	aside, err := RestoreSQLite(file, db)
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(t, db); got != "500" {
		t.Errorf("restored rows %s, want 500", got)
	}
	if got := rows(t, filepath.Join(aside, "state.db")); got != "501" {
		t.Errorf("kept-aside rows %s, want 501", got)
	}
}

func TestVerifyRefusesDamagedAndForeignFiles(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	newDB(t, db, true, 2000)
	if _, err := SaveSQLite(db, dir, "good"); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.db")
	data, _ := os.ReadFile(good)
	sidecar, _ := os.ReadFile(good + ".json")

	truncated := filepath.Join(dir, "truncated.db")
	os.WriteFile(truncated, data[:len(data)/2], 0o600)
	os.WriteFile(truncated+".json", sidecar, 0o600)

	other := filepath.Join(dir, "other-src.db")
	newDB(t, other, false, 3)
	if _, err := SaveSQLite(other, dir, "foreign"); err != nil {
		t.Fatal(err)
	}

	noSidecar := filepath.Join(dir, "copied.db")
	os.WriteFile(noSidecar, data, 0o600)

	notSQLite := filepath.Join(dir, "text.db")
	os.WriteFile(notSQLite, []byte("hello"), 0o600)
	var info Info
	json.Unmarshal(sidecar, &info)
	info.Size, info.SHA256 = 5, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	b, _ := json.Marshal(info)
	os.WriteFile(notSQLite+".json", b, 0o600)

	for file, want := range map[string]string{
		truncated:                        "damaged or truncated",
		filepath.Join(dir, "foreign.db"): "not a kine datastore",
		noSidecar:                        "has no checksum file",
		notSQLite:                        "not an SQLite database",
	} {
		if _, err := Verify(file); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Verify(%s) = %v, want %q", filepath.Base(file), err, want)
		}
		if _, err := RestoreSQLite(file, filepath.Join(dir, "restored.db")); err == nil {
			t.Errorf("RestoreSQLite(%s) succeeded", filepath.Base(file))
		}
	}
}

func TestListAndPrune(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "state.db")
	newDB(t, db, true, 1)
	for _, name := range []string{"scheduled-1", "scheduled-2", "scheduled-3", "manual"} {
		if _, err := SaveSQLite(db, dir, name); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := Prune(dir, "scheduled-", 2)
	if err != nil || len(deleted) != 1 || deleted[0] != "scheduled-1" {
		t.Errorf("Prune deleted %v (%v), want the oldest scheduled one", deleted, err)
	}
	list, _ := List(dir)
	var names []string
	for _, s := range list {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "manual,scheduled-3,scheduled-2" {
		t.Errorf("List = %v", names)
	}
}
