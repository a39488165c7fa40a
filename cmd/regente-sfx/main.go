// Command regente-sfx is the launcher of regente's release download: the
// release file is this program with regente compressed behind it (see
// pkg/selfextract). The first run unpacks regente over the file and
// executes it with the same arguments and environment, so `regente server`
// on a fresh download just works; REGENTE_UNPACK_ONLY=1 unpacks and exits,
// for installers.
package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"regente.io/regente/pkg/selfextract"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "regente:", err)
		os.Exit(1)
	}
}

func run() error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program's file: %w", err)
	}
	f, err := os.Open(self)
	if err != nil {
		return fmt.Errorf("open %s: %w", self, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open %s: %w", self, err)
	}
	trailer, err := selfextract.ReadTrailer(f, fi.Size())
	if errors.Is(err, selfextract.ErrNotSelfExtracting) {
		err = fmt.Errorf("%w: the regente program behind the launcher is missing, so the download is incomplete; download it again", err)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", self, err)
	}
	target, err := selfextract.Install(f, trailer, self, selfextract.CacheDir(), os.Stderr)
	f.Close()
	if err != nil {
		return err
	}
	if os.Getenv("REGENTE_UNPACK_ONLY") != "" {
		fmt.Println(target)
		return nil
	}
	// argv[0] stays as typed: regente dispatches kubectl, crictl and ctr
	// on it.
	if err := syscall.Exec(target, os.Args, os.Environ()); err != nil {
		return fmt.Errorf("run %s: %w", target, err)
	}
	return nil
}
