package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

// FuzzVerify feeds Verify snapshot files and sidecars it never wrote: a
// restore reads both from wherever the user copied them. With fixSum the
// sidecar's size and checksum are made to match the file, so that the
// fuzzer gets past the checksum into SQLite's and etcd's own readers.
// Verify must return an error naming the file, never panic.
func FuzzVerify(f *testing.F) {
	seedDir := f.TempDir()
	db := filepath.Join(seedDir, "state.db")
	newDB(f, db, true, 3)
	info, err := SaveSQLite(db, seedDir, "seed")
	if err != nil {
		f.Fatal(err)
	}
	whole, err := os.ReadFile(filepath.Join(seedDir, "seed.db"))
	if err != nil {
		f.Fatal(err)
	}
	sidecar, _ := json.Marshal(info)
	f.Add(whole, sidecar, false)
	f.Add(whole[:len(whole)/2], sidecar, true)
	f.Add(whole, []byte(`{"kind":"etcd"}`), true)
	f.Add([]byte("SQLite format 3\x00"), []byte(`{"size":16,"sha256":"ab"}`), false)
	f.Add([]byte{}, []byte(`{}`), false)

	f.Fuzz(func(t *testing.T, data, sidecar []byte, fixSum bool) {
		dir := t.TempDir()
		file := filepath.Join(dir, "fuzz.db")
		if fixSum {
			var info map[string]any
			if json.Unmarshal(sidecar, &info) != nil || info == nil {
				info = map[string]any{}
			}
			sum := sha256.Sum256(data)
			info["size"], info["sha256"] = len(data), hex.EncodeToString(sum[:])
			sidecar, _ = json.Marshal(info)
		}
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file+".json", sidecar, 0o600); err != nil {
			t.Fatal(err)
		}
		info, err := verifyWithin(t, file, 10*time.Second)
		if err != nil {
			if !strings.Contains(err.Error(), file) {
				t.Errorf("Verify's error does not name the file %s: %v", file, err)
			}
			return
		}
		if info.Kind == KindSQLite && rowsOrEmpty(file) == "" {
			t.Errorf("Verify accepted %s, which has no readable kine table", file)
		}
	})
}

// rowsOrEmpty counts the kine table's rows, or is "" when it cannot.
func rowsOrEmpty(file string) string {
	conn, err := (&sqlite3.SQLiteDriver{}).Open("file:" + file + "?mode=ro")
	if err != nil {
		return ""
	}
	defer conn.Close()
	got, err := queryOne(conn, "SELECT count(*) FROM kine")
	if err != nil {
		return ""
	}
	return got
}

// verifyWithin runs Verify, failing the case when it has not returned
// within limit: a restore that hangs on a damaged file is a finding too.
func verifyWithin(t *testing.T, file string, limit time.Duration) (*Info, error) {
	type result struct {
		info *Info
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, err := Verify(file)
		done <- result{info, err}
	}()
	select {
	case r := <-done:
		return r.info, r.err
	case <-time.After(limit):
		t.Fatalf("Verify(%s) has not returned after %s", file, limit)
		return nil, nil
	}
}
