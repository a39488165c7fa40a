package selfextract

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// magic ends every self-extracting file, after the compressed program's
// length and SHA-256.
const magic = "RGSFX\x00\x01\x00"

const trailerSize = 8 + sha256.Size + len(magic)

// Window is the largest zstd window the program may be compressed with
// (hack/sfxpack uses zstd --long=25): the code regente's payload programs
// share with regente itself is found across it, and the first run needs a
// buffer of this size to unpack.
const Window = 32 << 20

// Trailer describes the program appended to a launcher.
type Trailer struct {
	Offset int64             // where the compressed program starts
	Length int64             // its compressed length
	SHA256 [sha256.Size]byte // of the uncompressed program
}

// ErrNotSelfExtracting is returned by ReadTrailer for a file without a
// trailer: a regente binary that is already unpacked.
var ErrNotSelfExtracting = errors.New("not a self-extracting file")

// Write writes launcher, then the compressed program (a zstd frame whose
// window is at most Window), then the trailer with sum, the uncompressed
// program's SHA-256, to w.
func Write(w io.Writer, launcher, compressed []byte, sum [sha256.Size]byte) error {
	if _, err := w.Write(launcher); err != nil {
		return fmt.Errorf("write launcher: %w", err)
	}
	if _, err := w.Write(compressed); err != nil {
		return fmt.Errorf("write compressed program: %w", err)
	}
	trailer := make([]byte, 0, trailerSize)
	trailer = binary.LittleEndian.AppendUint64(trailer, uint64(len(compressed)))
	trailer = append(trailer, sum[:]...)
	trailer = append(trailer, magic...)
	if _, err := w.Write(trailer); err != nil {
		return fmt.Errorf("write trailer: %w", err)
	}
	return nil
}

// ReadTrailer reads the trailer at the end of f, whose size is size.
func ReadTrailer(f io.ReaderAt, size int64) (Trailer, error) {
	if size < int64(trailerSize) {
		return Trailer{}, ErrNotSelfExtracting
	}
	buf := make([]byte, trailerSize)
	if _, err := f.ReadAt(buf, size-int64(trailerSize)); err != nil {
		return Trailer{}, fmt.Errorf("read trailer: %w", err)
	}
	if !bytes.Equal(buf[trailerSize-len(magic):], []byte(magic)) {
		return Trailer{}, ErrNotSelfExtracting
	}
	var t Trailer
	t.Length = int64(binary.LittleEndian.Uint64(buf))
	copy(t.SHA256[:], buf[8:])
	t.Offset = size - int64(trailerSize) - t.Length
	if t.Length <= 0 || t.Offset < 0 {
		return Trailer{}, fmt.Errorf("trailer names %d compressed bytes in a file of %d: the file is damaged; download it again", t.Length, size)
	}
	return t, nil
}

// Unpack decompresses the program f carries into a new file at target
// (through a temporary file beside it, renamed into place once complete
// and checked), executable.
func Unpack(f io.ReaderAt, t Trailer, target string) error {
	zr, err := zstd.NewReader(io.NewSectionReader(f, t.Offset, t.Length), zstd.WithDecoderMaxWindow(Window))
	if err != nil {
		return fmt.Errorf("start zstd: %w", err)
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(filepath.Dir(target), ".regente-unpack-*")
	if err != nil {
		return fmt.Errorf("unpack regente: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), zr); err != nil {
		tmp.Close()
		return fmt.Errorf("unpack regente: %w (the file may be damaged; download it again)", err)
	}
	if !bytes.Equal(h.Sum(nil), t.SHA256[:]) {
		tmp.Close()
		return fmt.Errorf("unpacked regente does not match its checksum: the file is damaged; download it again")
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return fmt.Errorf("unpack regente: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("unpack regente: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("unpack regente: %w", err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("unpack regente: %w", err)
	}
	return nil
}

// Install unpacks the program f carries over self, the launcher's own
// file, so that later runs start regente directly, and returns the path to
// execute. Where self cannot be replaced (a read-only folder, or a user
// who may not write there), it unpacks into cacheDir instead, once per
// program. Progress goes to log: the first run pauses for a few seconds.
func Install(f io.ReaderAt, t Trailer, self, cacheDir string, log io.Writer) (string, error) {
	cached := filepath.Join(cacheDir, fmt.Sprintf("regente-%x", t.SHA256[:8]))
	if fi, err := os.Stat(cached); err == nil && fi.Mode().IsRegular() {
		return cached, nil
	}
	fmt.Fprintf(log, "regente: first run: unpacking regente into %s\n", self)
	err := Unpack(f, t, self)
	if err == nil {
		return self, nil
	}
	fmt.Fprintf(log, "regente: cannot replace %s (%v); unpacking into %s instead\n", self, err, cached)
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("unpack regente into %s: %w", cacheDir, err)
	}
	if err := Unpack(f, t, cached); err != nil {
		return "", err
	}
	return cached, nil
}

// CacheDir is where Install unpacks when the launcher's own file cannot
// be replaced: /var/lib/regente/bin for root, the user's cache folder
// otherwise.
func CacheDir() string {
	if os.Getuid() == 0 {
		return "/var/lib/regente/bin"
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "regente")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("regente-%d", os.Getuid()))
}
