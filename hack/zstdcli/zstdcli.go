package zstdcli

import (
	"fmt"
	"io"
	"math/bits"
	"os"
	"os/exec"
)

// Compress writes in to out through `zstd -19` with long-distance
// matching over window bytes (a power of two), the most a reader must
// buffer to decompress it.
func Compress(in io.Reader, out io.Writer, window int) error {
	if _, err := exec.LookPath("zstd"); err != nil {
		return fmt.Errorf("the zstd program is missing: run hack/deps.sh (Debian's zstd package)")
	}
	// -T2 whatever the machine: zstd's output is the same for any number
	// of worker threads, but not between one and several.
	cmd := exec.Command("zstd", "-q", "-19", fmt.Sprintf("--long=%d", bits.Len(uint(window))-1), "-T2", "-c")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	return nil
}
