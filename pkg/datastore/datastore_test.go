package datastore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	tests := []struct {
		name, path, wantErr string
	}{
		{"missing", filepath.Join(dir, "absent.db"), ""},
		{"empty", write("empty.db", ""), ""},
		{"sqlite", write("ok.db", sqliteHeader+"rest of page"), ""},
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
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.path) {
				t.Fatalf("error = %v, want %q naming %s", err, tt.wantErr, tt.path)
			}
			after, _ := os.ReadFile(tt.path)
			if string(before) != string(after) {
				t.Fatal("file changed")
			}
		})
	}
}
