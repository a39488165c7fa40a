// Command sfxpack writes regente's release download: a launcher
// (cmd/regente-sfx, built for the target) with the regente binary
// compressed behind it (hack/zstdcli, within selfextract.Window), in
// pkg/selfextract's format. Used by hack/release.sh.
//
// Usage: go run ./hack/sfxpack -launcher <file> -program <file> -o <file>
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"

	"regente.io/regente/hack/zstdcli"
	"regente.io/regente/pkg/selfextract"
)

func main() {
	launcher := flag.String("launcher", "", "the launcher binary")
	program := flag.String("program", "", "the regente binary to compress behind it")
	out := flag.String("o", "", "file to write")
	flag.Parse()
	if *launcher == "" || *program == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: sfxpack -launcher <file> -program <file> -o <file>")
		os.Exit(2)
	}
	if err := pack(*launcher, *program, *out); err != nil {
		fmt.Fprintln(os.Stderr, "sfxpack:", err)
		os.Exit(1)
	}
}

func pack(launcherPath, programPath, out string) error {
	launcher, err := os.ReadFile(launcherPath)
	if err != nil {
		return err
	}
	program, err := os.ReadFile(programPath)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	var compressed bytes.Buffer
	if err := zstdcli.Compress(bytes.NewReader(program), &compressed, selfextract.Window); err != nil {
		f.Close()
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := selfextract.Write(w, launcher, compressed.Bytes(), sha256.Sum256(program)); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}
