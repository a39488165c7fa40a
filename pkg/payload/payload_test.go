package payload

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"k8s.io/klog/v2"
)

func makeArchive(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.MkdirAll(filepath.Join(dir, "images"), 0o755)
	for name, content := range files {
		if !strings.Contains(name, "/") {
			name = "bin/" + name
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := WriteTar(dir, &buf); err != nil {
		t.Fatal(err)
	}
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(buf.Bytes(), nil)
}

func TestPackIsReproducible(t *testing.T) {
	a := makeArchive(t, map[string]string{"runc": "r", "bridge": "b"})
	b := makeArchive(t, map[string]string{"bridge": "b", "runc": "r"})
	if !bytes.Equal(a, b) {
		t.Fatal("same files gave different archives")
	}
}

func TestEnsureUnpacksVerifiesAndLinks(t *testing.T) {
	data := t.TempDir()
	v1 := makeArchive(t, map[string]string{"runc": "runc v1", "bridge": "bridge v1", "images/pause.tar": "img"})
	dir1, err := Ensure(klog.Background(), NewArchive(v1), data)
	bin1 := filepath.Join(dir1, "bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(bin1, "runc"))
	if err != nil || string(got) != "runc v1" {
		t.Fatalf("runc = %q, %v", got, err)
	}
	if fi, _ := os.Stat(filepath.Join(bin1, "runc")); fi.Mode().Perm() != 0o755 {
		t.Fatalf("runc mode %o", fi.Mode().Perm())
	}
	// A second call reuses the folder.
	if img, err := os.ReadFile(filepath.Join(dir1, "images", "pause.tar")); err != nil || string(img) != "img" {
		t.Fatalf("images/pause.tar = %q, %v", img, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir1, "images", "pause.tar")); fi.Mode().Perm() != 0o644 {
		t.Fatalf("image mode %o", fi.Mode().Perm())
	}
	if again, err := Ensure(klog.Background(), NewArchive(v1), data); err != nil || again != dir1 {
		t.Fatalf("second Ensure = %s, %v", again, err)
	}
	// An upgrade moves current and keeps previous.
	v2 := makeArchive(t, map[string]string{"runc": "runc v2", "bridge": "bridge v2"})
	dir2, err := Ensure(klog.Background(), NewArchive(v2), data)
	if err != nil {
		t.Fatal(err)
	}
	bin2 := filepath.Join(dir2, "bin")
	cur, _ := os.Readlink(filepath.Join(data, "data", "current"))
	prev, _ := os.Readlink(filepath.Join(data, "data", "previous"))
	if filepath.Join(data, "data", cur, "bin") != bin2 || filepath.Join(data, "data", prev, "bin") != bin1 {
		t.Fatalf("current=%s previous=%s", cur, prev)
	}
}

func TestEnsureRepairsIncompleteFolder(t *testing.T) {
	data := t.TempDir()
	archive := makeArchive(t, map[string]string{"runc": "r", "bridge": "b"})
	dir, err := Ensure(klog.Background(), NewArchive(archive), data)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	os.Remove(filepath.Join(bin, "bridge")) // as a crash or a careless hand would
	if _, err := Ensure(klog.Background(), NewArchive(archive), data); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(bin, "bridge")); err != nil {
		t.Fatalf("bridge not restored: %v", err)
	}
}

func TestVerifyRejectsTamperedFile(t *testing.T) {
	dir := t.TempDir()
	if err := extract(makeArchive(t, map[string]string{"runc": "genuine"}), dir); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "bin", "runc"), []byte("tampered"), 0o755)
	if err := verify(dir); err == nil || !strings.Contains(err.Error(), "bin/runc: checksum") {
		t.Fatalf("verify = %v, want a checksum error naming bin/runc", err)
	}
}

func TestExtractRejectsCorruptArchive(t *testing.T) {
	if err := extract([]byte("not zstd at all"), t.TempDir()); err == nil {
		t.Fatal("corrupt archive accepted")
	}
}
