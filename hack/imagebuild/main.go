// Command imagebuild writes a single-layer OCI image archive from files on
// disk, with pkg/ociarchive: regente's own images (pause, test images) are
// built by our code, with no registry and no container builder.
//
// Usage: imagebuild -name <ref> -o <archive> [-entrypoint /x] [-cmd a,b] <image-path>=<host-path>...
//
//	imagebuild -pause -o <archive> /pause=<host-path>   (the sandbox image, under the name the agent uses)
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"regente.io/regente/pkg/images"
	"regente.io/regente/pkg/ociarchive"
)

func main() {
	name := flag.String("name", "", "image reference")
	out := flag.String("o", "", "archive to write")
	entrypoint := flag.String("entrypoint", "", "comma-separated entrypoint")
	cmd := flag.String("cmd", "", "comma-separated cmd")
	pause := flag.Bool("pause", false, "build the pause image: its name and entrypoint come from pkg/images")
	flag.Parse()
	if *pause {
		*name, *entrypoint = images.PauseImage, "/pause"
	}
	if err := run(*name, *out, *entrypoint, *cmd, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(name, out, entrypoint, cmd string, files []string) error {
	if name == "" || out == "" || len(files) == 0 {
		return fmt.Errorf("usage: imagebuild -name <ref> -o <archive> <image-path>=<host-path>...")
	}
	img := ociarchive.Image{Name: name, Entrypoint: split(entrypoint), Cmd: split(cmd)}
	for _, f := range files {
		inImage, onHost, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("file %q: want <image-path>=<host-path>", f)
		}
		data, err := os.ReadFile(onHost)
		if err != nil {
			return err
		}
		fi, err := os.Stat(onHost)
		if err != nil {
			return err
		}
		img.Files = append(img.Files, ociarchive.File{Path: inImage, Mode: int64(fi.Mode().Perm()), Data: data})
	}
	return ociarchive.WriteFile(out, img)
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
