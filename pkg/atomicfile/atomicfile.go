package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// File is one file to write.
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
}

// Write writes every file atomically: all contents are staged and synced
// in temp files next to their targets before any rename, so a crash never
// leaves a half-written file and the renames of a pair land back to back.
func Write(files ...File) error {
	tmps := make([]string, 0, len(files))
	renamed := 0
	defer func() {
		for _, t := range tmps[renamed:] {
			os.Remove(t)
		}
	}()
	for _, f := range files {
		t, err := stage(f)
		if err != nil {
			return err
		}
		tmps = append(tmps, t)
	}
	for i, f := range files {
		if err := os.Rename(tmps[i], f.Path); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
		renamed++
	}
	synced := map[string]bool{}
	for _, f := range files {
		if dir := filepath.Dir(f.Path); !synced[dir] {
			if err := syncDir(dir); err != nil {
				return err
			}
			synced[dir] = true
		}
	}
	return nil
}

func stage(f File) (string, error) {
	// CreateTemp makes the file 0600, so key bytes are never world-readable.
	t, err := os.CreateTemp(filepath.Dir(f.Path), "."+filepath.Base(f.Path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", f.Path, err)
	}
	_, err = t.Write(f.Data)
	if err == nil {
		err = t.Chmod(f.Mode)
	}
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(t.Name())
		return "", fmt.Errorf("write %s: %w", f.Path, err)
	}
	return t.Name(), nil
}

// syncDir makes the renames durable, so after a power loss the directory
// does not point back at the old files while their replacements are synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
