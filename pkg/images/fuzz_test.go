package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/klauspost/compress/zstd"

	"regente.io/regente/pkg/ociarchive"
)

// maxFuzzImport bounds what one fuzzed archive may decompress to, so that
// a small input that inflates without end ends the case, not the disk.
const maxFuzzImport = 64 << 20

// FuzzImportArchive reads any file dropped into the images dir, as a
// .tar, .tar.gz or .tar.zst, the way ImportFile does: through
// decompress into containerd's archive importer, here with a content
// store of its own in a temp dir. Whatever the archive holds (paths with
// "..", symlinks out of the tree, huge headers, inflating streams), the
// import ends with an image or an error, never a panic, and writes
// nothing outside the content store.
func FuzzImportArchive(f *testing.F) {
	var oci bytes.Buffer
	if err := ociarchive.Write(&oci, ociarchive.Image{Name: "regente.invalid/fuzz:1", Files: []ociarchive.File{{Path: "/x", Mode: 0o755, Data: []byte("x")}}}); err != nil {
		f.Fatal(err)
	}
	f.Add(oci.Bytes(), uint8(0))
	f.Add(compress(f, oci.Bytes(), ".tar.gz"), uint8(1))
	f.Add(compress(f, oci.Bytes(), ".tar.zst"), uint8(2))
	f.Add(tarOf(f, map[string]string{
		"manifest.json": `[{"Config":"c.json","RepoTags":["fuzz:1"],"Layers":["../../l.tar"]}]`,
		"c.json":        `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`,
		"../../l.tar":   "layer",
	}, map[string]string{"link.tar": "../../../../etc/passwd"}), uint8(0))
	f.Add(tarOf(f, map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "index.json": `{"manifests":[{"digest":"sha256:00","size":-1}]}`}, nil), uint8(0))
	f.Add([]byte{}, uint8(2))

	f.Fuzz(func(t *testing.T, data []byte, kind uint8) {
		dir := t.TempDir()
		name := filepath.Join(dir, "fuzz"+[]string{".tar", ".tar.gz", ".tar.zst"}[kind%3])
		root := filepath.Join(dir, "content")
		store, err := local.NewStore(root)
		if err != nil {
			t.Fatal(err)
		}
		r, err := decompress(name, bytes.NewReader(data))
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = archive.ImportIndex(ctx, store, io.LimitReader(r, maxFuzzImport))
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "content" {
				t.Errorf("the import wrote %s outside its content store", e.Name())
			}
		}
	})
}

// tarOf makes a tar of regular files and symlinks, by name.
func tarOf(tb testing.TB, files, links map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(tw, data); err != nil {
			tb.Fatal(err)
		}
	}
	for name, target := range links {
		if err := tw.WriteHeader(&tar.Header{Name: name, Linkname: target, Typeflag: tar.TypeSymlink}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// compress compresses data as a file named with suffix would be.
func compress(tb testing.TB, data []byte, suffix string) []byte {
	var b bytes.Buffer
	var w io.WriteCloser
	switch {
	case strings.HasSuffix(suffix, ".gz"):
		w = gzip.NewWriter(&b)
	default:
		zw, err := zstd.NewWriter(&b)
		if err != nil {
			tb.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}
