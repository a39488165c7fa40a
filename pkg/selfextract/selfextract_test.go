package selfextract

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// selfExtracting writes a launcher stand-in with program behind it.
func selfExtracting(t *testing.T, program []byte) string {
	t.Helper()
	zw, err := zstd.NewWriter(nil, zstd.WithWindowSize(Window))
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	var buf bytes.Buffer
	if err := Write(&buf, []byte("\x7fELF launcher stand-in"), zw.EncodeAll(program, nil), sha256.Sum256(program)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "regente")
	if err := os.WriteFile(path, buf.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func openTrailer(t *testing.T, path string) (*os.File, Trailer) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	tr, err := ReadTrailer(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return f, tr
}

func TestInstallReplacesTheLauncher(t *testing.T) {
	program := bytes.Repeat([]byte("regente program "), 100000)
	self := selfExtracting(t, program)
	f, tr := openTrailer(t, self)
	var log bytes.Buffer
	got, err := Install(f, tr, self, t.TempDir(), &log)
	if err != nil {
		t.Fatal(err)
	}
	if got != self {
		t.Errorf("Install ran %s, want the launcher's own file %s", got, self)
	}
	data, _ := os.ReadFile(self)
	if !bytes.Equal(data, program) {
		t.Fatalf("%s holds %d bytes after Install, want the %d of the program", self, len(data), len(program))
	}
	if fi, _ := os.Stat(self); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", fi.Mode().Perm())
	}
	if !strings.Contains(log.String(), "first run") {
		t.Errorf("log %q does not say it unpacks", log.String())
	}
	if _, err := ReadTrailer(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrNotSelfExtracting) {
		t.Errorf("ReadTrailer on the unpacked program: %v, want ErrNotSelfExtracting", err)
	}
}

func TestInstallFallsBackToTheCache(t *testing.T) {
	program := []byte("#!/bin/sh\necho hi\n")
	self := selfExtracting(t, program)
	f, tr := openTrailer(t, self)
	cache := filepath.Join(t.TempDir(), "cache")
	// A launcher in a folder that does not exist cannot be replaced.
	got, err := Install(f, tr, filepath.Join(t.TempDir(), "gone", "regente"), cache, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(got) != cache {
		t.Fatalf("Install ran %s, want a file in %s", got, cache)
	}
	if data, _ := os.ReadFile(got); !bytes.Equal(data, program) {
		t.Fatalf("cached program %q, want %q", data, program)
	}
	// The next run finds it without unpacking again.
	var log bytes.Buffer
	again, err := Install(f, tr, filepath.Join(t.TempDir(), "gone", "regente"), cache, &log)
	if err != nil || again != got || log.Len() != 0 {
		t.Errorf("second Install: %s, %v, log %q; want %s, no error, nothing unpacked", again, err, log.String(), got)
	}
}

func TestDamagedDownloadsAreRefused(t *testing.T) {
	program := bytes.Repeat([]byte("0123456789abcdef"), 50000)
	self := selfExtracting(t, program)
	data, _ := os.ReadFile(self)
	_, tr := openTrailer(t, self)
	data[tr.Offset+tr.Length/2] ^= 0xff
	if err := os.WriteFile(self, data, 0o755); err != nil {
		t.Fatal(err)
	}
	f, tr := openTrailer(t, self)
	_, err := Install(f, tr, self, filepath.Join(t.TempDir(), "cache"), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "download it again") {
		t.Fatalf("Install of a damaged file: %v, want an error that says to download it again", err)
	}
	if after, _ := os.ReadFile(self); !bytes.Equal(after, data) {
		t.Error("a failed unpack changed the launcher's file")
	}

	truncated := data[:len(data)-10]
	if _, err := ReadTrailer(bytes.NewReader(truncated), int64(len(truncated))); !errors.Is(err, ErrNotSelfExtracting) {
		t.Errorf("ReadTrailer of a truncated file: %v, want ErrNotSelfExtracting", err)
	}
}
