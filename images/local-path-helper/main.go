// Command local-path-helper creates and deletes a volume's folder on its
// node, for the helper pods of upstream's local-path provisioner, which
// runs it as setupCommand and teardownCommand with
// "-p <path> -s <bytes> -m <Filesystem|Block> -a <create|delete>". It
// replaces the shell scripts upstream runs, so the helper image needs no
// shell.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	path := flag.String("p", "", "volume folder")
	flag.String("s", "", "size in bytes (unused: folders are not quota'd)")
	mode := flag.String("m", "Filesystem", "volume mode")
	action := flag.String("a", "", "create or delete")
	flag.Parse()
	if err := run(*path, *mode, *action); err != nil {
		fmt.Fprintln(os.Stderr, "local-path-helper:", err)
		os.Exit(1)
	}
}

func run(path, mode, action string) error {
	if !filepath.IsAbs(path) || filepath.Clean(path) == "/" {
		return fmt.Errorf("-p %q: want an absolute volume folder", path)
	}
	if mode != "Filesystem" {
		return fmt.Errorf("-m %q: only Filesystem volumes are supported", mode)
	}
	switch action {
	case "create":
		if err := os.MkdirAll(path, 0o777); err != nil {
			return err
		}
		// MkdirAll applies the umask: pods of any user may write.
		return os.Chmod(path, 0o777)
	case "delete":
		return os.RemoveAll(path)
	}
	return fmt.Errorf("-a %q: want create or delete", action)
}
