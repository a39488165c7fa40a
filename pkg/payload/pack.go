package payload

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// sumsFile is the manifest inside the archive: "<sha256>  <bin|images>/<name>" lines.
const sumsFile = "SHA256SUMS"

// Window is the largest zstd window the archive may be compressed with
// (hack/payloadpack uses zstd --long=26), and so the most memory the first
// start needs to unpack it. 64 MiB spans containerd and its shim, which
// share most of their code, and saves 2 MB over 32 MiB.
const Window = 64 << 20

// WriteTar writes the regular files of dir's bin/ and images/ folders as a
// tar on w, with a SHA256SUMS manifest first; hack/payloadpack compresses
// it with zstd. The output depends only on the files' names and contents,
// so the same inputs give the same archive and the same content address.
func WriteTar(dir string, w io.Writer) error {
	var names []string
	for _, sub := range []string{"bin", "images"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read payload dir: %w", err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				names = append(names, sub+"/"+e.Name())
			}
		}
	}
	// Smallest first within each folder: the CNI plugins, which share most
	// of their code, then sit next to each other inside the compression
	// window. The order depends only on the files, as the hash must.
	sizes := map[string]int64{}
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			return fmt.Errorf("read payload dir: %w", err)
		}
		sizes[n] = fi.Size()
	}
	sort.Slice(names, func(i, j int) bool {
		di, dj := path.Dir(names[i]), path.Dir(names[j])
		if di != dj {
			return di < dj
		}
		if sizes[names[i]] != sizes[names[j]] {
			return sizes[names[i]] < sizes[names[j]]
		}
		return names[i] < names[j]
	})
	if len(names) == 0 {
		return fmt.Errorf("payload dir %s has no files in bin/ or images/", dir)
	}
	var sums strings.Builder
	for _, n := range names {
		sum, err := fileSHA256(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, n)
	}
	tw := tar.NewWriter(w)
	if err := writeEntry(tw, sumsFile, 0o644, strings.NewReader(sums.String()), int64(sums.Len())); err != nil {
		return err
	}
	for _, n := range names {
		if err := addFile(tw, filepath.Join(dir, n), n); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish tar: %w", err)
	}
	return nil
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("pack %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("pack %s: %w", path, err)
	}
	mode := int64(0o644)
	if strings.HasPrefix(name, "bin/") {
		mode = 0o755
	}
	return writeEntry(tw, name, mode, f, fi.Size())
}

func writeEntry(tw *tar.Writer, name string, mode int64, r io.Reader, size int64) error {
	// Zero times and owners keep the archive reproducible.
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("pack %s: %w", name, err)
	}
	if _, err := io.Copy(tw, r); err != nil {
		return fmt.Errorf("pack %s: %w", name, err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
