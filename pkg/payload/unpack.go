package payload

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// Ensure makes the archive's files available under
// <dataDir>/data/<sha256 of archive>/{bin,images} and returns that folder. The
// first call for an archive unpacks it into a temp folder, verifies every
// file against SHA256SUMS, and renames the folder into place; later calls
// only check the folder is complete. `current` points at the folder and
// `previous` at the one current pointed at before, so an upgrade can be
// rolled back by hand.
//
// A warm start reads nothing of the archive but its recorded checksum: the
// embedded bytes are part of the binary's mapping, and touching them would
// keep them resident for the life of the process.
func Ensure(logger klog.Logger, archive Archive, dataDir string) (string, error) {
	hash := archive.SHA256
	root := filepath.Join(dataDir, "data")
	final := filepath.Join(root, hash)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", root, err)
	}
	unlock, err := lock(filepath.Join(root, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	if err := checkComplete(final); err != nil {
		logger.Info("Unpacking embedded binaries (first start of this version)", "dir", final, "reason", err.Error())
		begin := time.Now()
		if err := checkSum(archive); err != nil {
			return "", err
		}
		if err := unpack(archive.Data, root, final); err != nil {
			return "", err
		}
		logger.Info("Unpacked embedded binaries", "dir", final, "took", time.Since(begin).Round(time.Millisecond).String())
		if archive.Release != nil {
			archive.Release()
		}
		// The decoder's window (up to Window) is garbage now: hand it back
		// to the OS at once rather than over the scavenger's minutes, as a
		// small node's memory limit counts it while containerd and the
		// kubelet start.
		debug.FreeOSMemory()
	}
	if err := pointLinks(root, hash); err != nil {
		return "", err
	}
	return final, nil
}

// checkComplete is the cheap check of a folder unpacked before: the
// manifest is there and every file it lists has a file of that name.
func checkComplete(dir string) error {
	sums, err := readSums(filepath.Join(dir, sumsFile))
	if err != nil {
		return err
	}
	for name := range sums {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func unpack(archive []byte, root, final string) error {
	tmp, err := os.MkdirTemp(root, ".unpack-")
	if err != nil {
		return fmt.Errorf("create unpack folder in %s: %w", root, err)
	}
	defer os.RemoveAll(tmp)
	if err := extract(archive, tmp); err != nil {
		return fmt.Errorf("unpack embedded binaries: %w", err)
	}
	if err := verify(tmp); err != nil {
		return fmt.Errorf("verify embedded binaries: %w", err)
	}
	if err := os.RemoveAll(final); err != nil { // an incomplete folder from a crash
		return fmt.Errorf("remove incomplete %s: %w", final, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("move unpacked binaries into %s: %w", final, err)
	}
	return nil
}

func extract(archive []byte, dir string) error {
	zr, err := zstd.NewReader(bytes.NewReader(archive), zstd.WithDecoderMaxWindow(Window))
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || strings.HasPrefix(name, "..") || path.IsAbs(name) {
			return fmt.Errorf("unexpected entry %q in archive", h.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := writeFile(target, tr, os.FileMode(h.Mode)&0o755); err != nil {
			return err
		}
	}
}

func writeFile(target string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// verify checks every file against the manifest, and that nothing else is
// in the folder.
func verify(dir string) error {
	sums, err := readSums(filepath.Join(dir, sumsFile))
	if err != nil {
		return err
	}
	for name, want := range sums {
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s: checksum %s, manifest says %s", name, got, want)
		}
	}
	bins, _ := filepath.Glob(filepath.Join(dir, "bin", "*"))
	imgs, _ := filepath.Glob(filepath.Join(dir, "images", "*"))
	if len(bins)+len(imgs) != len(sums) {
		return fmt.Errorf("archive has %d files, manifest lists %d", len(bins)+len(imgs), len(sums))
	}
	return nil
}

func readSums(p string) (map[string]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 || !(strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "images/")) {
			return nil, fmt.Errorf("%s: malformed line %q", p, sc.Text())
		}
		sums[name] = sum
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("%s lists no files", p)
	}
	return sums, nil
}

// pointLinks makes current point at hash, moving the old target to
// previous. Each link is replaced by renaming a new symlink over it.
func pointLinks(root, hash string) error {
	current := filepath.Join(root, "current")
	old, err := os.Readlink(current)
	if err == nil && old == hash {
		return nil
	}
	if err == nil {
		if err := replaceLink(filepath.Join(root, "previous"), old); err != nil {
			return err
		}
	}
	return replaceLink(current, hash)
}

func replaceLink(link, target string) error {
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	return nil
}

// lock serialises unpacking between processes sharing the data dir.
func lock(p string) (func(), error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}

// Dir is the folder Ensure unpacks archive into, known before unpacking so
// components can be configured up front.
func Dir(archive Archive, dataDir string) string {
	return filepath.Join(dataDir, "data", archive.SHA256)
}

// Archive is a packed payload and the SHA-256 of its bytes, which names
// the folder it unpacks into.
type Archive struct {
	Data   []byte
	SHA256 string // lowercase hex
	// Release, when set, is called once the archive is unpacked and its
	// bytes are no longer needed (e.g. to drop them from memory).
	Release func()
}

// NewArchive returns data as an Archive, hashing it.
func NewArchive(data []byte) Archive {
	sum := sha256.Sum256(data)
	return Archive{Data: data, SHA256: hex.EncodeToString(sum[:])}
}

// checkSum makes sure the bytes are the ones the recorded checksum names,
// so a stale checksum from a broken build cannot name a folder holding
// other binaries.
func checkSum(a Archive) error {
	if got := NewArchive(a.Data).SHA256; got != a.SHA256 {
		return fmt.Errorf("embedded payload has SHA-256 %s but was recorded as %q: the build is inconsistent; rebuild with make", got, a.SHA256)
	}
	return nil
}
