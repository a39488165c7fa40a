package datastore

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/k3s-io/kine/pkg/drivers"
)

func TestCheckSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A real datastore file, and copies of it cut short and with pages
	// overwritten, as a full disk or a failing card leaves them.
	good := filepath.Join(dir, "ok.db")
	if err := createSQLite(good); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE kine (id INTEGER PRIMARY KEY, name TEXT, value BLOB); CREATE INDEX kine_name ON kine (name)"); err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		if _, err := db.Exec("INSERT INTO kine (name, value) VALUES (?, randomblob(300))", fmt.Sprintf("/registry/k%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	content, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	damaged := slices.Clone(content)
	for i := len(damaged) / 3; i < len(damaged)/3+4*sqlitePageSize; i++ {
		damaged[i] = 0x5a
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"missing", filepath.Join(dir, "absent.db"), ""},
		{"empty", write("empty.db", ""), ""},
		{"sqlite", good, ""},
		{"truncated", write("truncated.db", string(content[:len(content)/2])), "is damaged"},
		{"damaged", write("damaged.db", string(damaged)), "is damaged"},
		{"garbage", write("bad.db", "this is not a database at all"), "is not an SQLite database"},
		{"short", write("short.db", "SQL"), "is not an SQLite database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.ReadFile(tt.path)
			err := CheckSQLiteFile(tt.path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.path) ||
				!strings.Contains(err.Error(), "--cluster-reset-restore-path") {
				t.Fatalf("error = %v, want %q naming %s", err, tt.wantErr, tt.path)
			}
			after, _ := os.ReadFile(tt.path)
			if string(before) != string(after) {
				t.Fatal("file changed")
			}
		})
	}
}

func TestCreateSQLiteIsOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := createSQLite(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-wal", nil, 0o644); err != nil { // as an older release left it
		t.Fatal(err)
	}
	if err := createSQLite(path); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %o, want 0600", p, fi.Mode().Perm())
		}
	}
}

func TestWrapScheme(t *testing.T) {
	for endpoint, want := range map[string]string{
		"sqlite:///var/lib/regente/state.db?_journal=WAL": "regente-sqlite:///var/lib/regente/state.db?_journal=WAL",
		"postgres://u:p@db:5432/k":                        "regente-postgres://u:p@db:5432/k",
		"postgresql://u:p@db:5432/k":                      "regente-postgresql://u:p@db:5432/k",
		"mysql://u:p@tcp(db:3306)/k":                      "regente-mysql://u:p@tcp(db:3306)/k",
		"https://etcd-1:2379":                             "https://etcd-1:2379",
		"unix:///run/etcd.sock":                           "unix:///run/etcd.sock",
	} {
		if got := wrapScheme(endpoint); got != want {
			t.Errorf("wrapScheme(%q) = %q, want %q", endpoint, got, want)
		}
	}
	registerDrivers()
	for _, scheme := range wrappedSchemes {
		if _, ok := drivers.Get(wrappedSchemePrefix + scheme); !ok {
			t.Errorf("no kine driver registered for %s%s", wrappedSchemePrefix, scheme)
		}
	}
}

// A new datastore gets small pages (fewer bytes per kine row in the WAL);
// an existing one keeps its own.
func TestCreateSQLitePageSize(t *testing.T) {
	dir := t.TempDir()
	pageSize := func(path string) int {
		t.Helper()
		db, err := sql.Open("sqlite3", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow("PRAGMA page_size").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	fresh := filepath.Join(dir, "fresh.db")
	if err := createSQLite(fresh); err != nil {
		t.Fatal(err)
	}
	if got := pageSize(fresh); got != sqlitePageSize {
		t.Errorf("new datastore: page size %d, want %d", got, sqlitePageSize)
	}
	old := filepath.Join(dir, "old.db")
	db, _ := sql.Open("sqlite3", "file:"+old)
	if _, err := db.Exec("PRAGMA page_size=4096; CREATE TABLE t(x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := createSQLite(old); err != nil {
		t.Fatal(err)
	}
	if got := pageSize(old); got != 4096 {
		t.Errorf("existing datastore: page size %d, want its own 4096", got)
	}
}
