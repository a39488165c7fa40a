// Command payloadpack packs a folder of helper binaries and system images
// into the zstd tar that regente embeds (see pkg/payload), and its SHA-256
// beside it as <archive>.sha256. Used by hack/payload.sh.
//
// The tar goes through the zstd program (hack/zstdcli) with a 64 MiB
// window (pkg/payload.Window): about 5 MB smaller than the Go encoder's
// best with 32 MiB. Its output depends only on its input, as the content address
// needs.
//
// Usage: go run ./hack/payloadpack -dir <binaries> -o <archive>
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"regente.io/regente/hack/zstdcli"
	"regente.io/regente/pkg/payload"
)

func main() {
	dir := flag.String("dir", "", "folder of binaries to pack")
	out := flag.String("o", "", "archive to write")
	flag.Parse()
	if *dir == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: payloadpack -dir <binaries> -o <archive>")
		os.Exit(2)
	}
	if err := pack(*dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "payloadpack:", err)
		os.Exit(1)
	}
}

func pack(dir, out string) error {
	var tarball bytes.Buffer
	if err := payload.WriteTar(dir, &tarball); err != nil {
		return err
	}
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	if err := zstdcli.Compress(&tarball, f, payload.Window); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return err
	}
	// The checksum names the folder the archive unpacks into; recording it
	// at build time spares every start from hashing the archive.
	data, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	return os.WriteFile(out+".sha256", []byte(payload.NewArchive(data).SHA256), 0o644)
}
