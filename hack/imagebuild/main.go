// Command imagebuild writes a single-layer OCI image archive from files on
// disk, with pkg/ociarchive: regente's own images (pause, test images) are
// built by our code, with no registry and no container builder.
//
// Usage: imagebuild -name <ref> -o <archive> [-entrypoint /x] [-cmd a,b] <image-path>=<host-path>...
//
//	imagebuild -system <name> -o <archive> <host-path>   (a system image of pkg/sysimages: its program, links to it, /<name> the entrypoint)
//	imagebuild -list   (the system images and their programs)
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"regente.io/regente/pkg/ociarchive"
	"regente.io/regente/pkg/sysimages"
)

func main() {
	name := flag.String("name", "", "image reference")
	out := flag.String("o", "", "archive to write")
	entrypoint := flag.String("entrypoint", "", "comma-separated entrypoint")
	cmd := flag.String("cmd", "", "comma-separated cmd")
	arch := flag.String("arch", "", "GOARCH of the image's programs; empty means this machine's")
	system := flag.String("system", "", "build this system image of pkg/sysimages: its name and entrypoint come from there")
	list := flag.Bool("list", false, "print each system image of pkg/sysimages and the program its layer holds, one per line")
	flag.Parse()
	if *list {
		for _, img := range sysimages.All() {
			fmt.Println(img.Name, img.ProgramName())
		}
		return
	}
	files := flag.Args()
	if *system != "" {
		img, ok := sysimages.Lookup(*system)
		if !ok || len(files) != 1 {
			fmt.Fprintf(os.Stderr, "imagebuild: -system %q: want a system image of pkg/sysimages and one program\n", *system)
			os.Exit(2)
		}
		*name, *entrypoint = img.Ref, "/"+img.Name
		files = []string{"/" + img.ProgramName() + "=" + files[0]}
	}
	var links []ociarchive.File
	if *system != "" {
		img, _ := sysimages.Lookup(*system)
		for _, l := range img.Links() {
			links = append(links, ociarchive.File{Path: "/" + l, Link: img.ProgramName()})
		}
	}
	if err := run(*name, *out, *entrypoint, *cmd, *arch, files, links); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(name, out, entrypoint, cmd, arch string, files []string, links []ociarchive.File) error {
	if name == "" || out == "" || len(files) == 0 {
		return errors.New("usage: imagebuild -name <ref> -o <archive> <image-path>=<host-path> [more pairs]")
	}
	img := ociarchive.Image{Name: name, Entrypoint: split(entrypoint), Cmd: split(cmd), Arch: arch}
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
	img.Files = append(img.Files, links...)
	return ociarchive.WriteFile(out, img)
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
