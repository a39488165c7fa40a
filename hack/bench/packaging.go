package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/klauspost/compress/zstd"
)

// benchPackaging measures what a user downloads and unpacks: each built
// binary (bin/regente and make release's dist/ files), what the
// binary is made of, and, on this machine, the first start's unpack of
// the embedded payload (time and size on disk).
func benchPackaging(bin string) ([]row, error) {
	fi, err := os.Stat(bin)
	if err != nil {
		return nil, err
	}
	rows := []row{{"binary " + bin + " (unpacked, as installed)", mibf(fi.Size()), "-"}}
	// make release's files are what a user downloads: the launcher with
	// regente compressed behind it (pkg/selfextract).
	released := 0
	for _, name := range []string{"regente", "regente-arm64", "regente-armv7"} {
		path := filepath.Join("dist", name)
		if !fileExists(path) {
			continue
		}
		released++
		f, err := elf.Open(path)
		if err != nil {
			return nil, err
		}
		machine := f.Machine.String()
		f.Close()
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row{fmt.Sprintf("release download dist/%s (%s)", name, machine), mibf(fi.Size()), "≤ 100 MiB (k3s: 77.5 MiB + its air-gap images)"})
	}
	if released == 0 {
		rows = append(rows, row{"release downloads", "not measured: run make release first", "-"})
	}
	parts, err := payloadContributors(bin, "pkg/payload/embedded/payload.tar.zst")
	if err != nil {
		return nil, err
	}
	rows = append(rows, parts...)

	// The first start unpacks the payload into <data-dir>/data/<hash>.
	s, err := newInstance(bin)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(s.dir)
	s.agent = true
	if _, err := s.startToNodeReady(); err != nil {
		return nil, err
	}
	s.stop()
	defer cleanupNode(s)
	took, err := logValue(filepath.Join(s.dir, "server.log"), regexp.MustCompile(`"Unpacked embedded binaries".*took="([^"]+)"`))
	if err != nil {
		return nil, err
	}
	dirs, _ := filepath.Glob(filepath.Join(s.dir, "data", "data", "*"))
	var unpacked int64
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && len(filepath.Base(d)) == 64 {
			unpacked += dirSize(d)
		}
	}
	return append(rows,
		row{"first start: unpack of the embedded payload", took, "-"},
		row{"  unpacked on disk (<data-dir>/data/<hash>)", mibf(unpacked), "≤ 250 MiB"},
		row{"  whole data dir once Ready (with containerd's images and snapshots)", mibf(dirSize(filepath.Join(s.dir, "data"))), "-"},
	), nil
}

// payloadContributors lists what the host's binary is made of, largest
// first: the program itself and each file of the embedded payload, with
// the bytes each takes compressed on its own at the payload's level (the
// payload's shared window makes the sum a little larger than the archive).
func payloadContributors(bin, archive string) ([]row, error) {
	fi, err := os.Stat(bin)
	if err != nil {
		return nil, err
	}
	af, err := os.Stat(archive)
	if err != nil {
		return []row{{"largest contributors", "not measured: no " + archive + " (run make)", "-"}}, nil
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		return nil, err
	}
	zr, err := zstd.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", archive, err)
	}
	defer zr.Close()
	type part struct {
		name      string
		raw, comp int64
	}
	parts := []part{{name: "regente's own program (binary minus payload)", raw: fi.Size() - af.Size(), comp: fi.Size() - af.Size()}}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", archive, err)
		}
		var n countingWriter
		w, err := zstd.NewWriter(&n, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(w, tr); err != nil {
			return nil, fmt.Errorf("read %s in %s: %w", h.Name, archive, err)
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		parts = append(parts, part{name: h.Name, raw: h.Size, comp: int64(n)})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].comp > parts[j].comp })
	rows := []row{{"  embedded payload (zstd)", mibf(af.Size()), "-"},
		{"largest contributors (in the binary, compressed; the program is stored raw)", "raw → in binary", "-"}}
	for i, p := range parts {
		if i == 8 {
			break
		}
		rows = append(rows, row{"  " + p.name, fmt.Sprintf("%s → %s", mibf(p.raw), mibf(p.comp)), "-"})
	}
	return rows, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func mibf(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

func dirSize(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

// logValue returns the first submatch of re in the log file.
func logValue(path string, re *regexp.Regexp) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if m := re.FindSubmatch(b); m != nil {
		return string(m[1]), nil
	}
	return "", fmt.Errorf("%s has no line matching %s", path, re)
}
