package deploy

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"regente.io/regente/pkg/atomicfile"
)

// Stage writes each embedded manifest template (<name>.yaml in addons)
// into dir, rendered with values, unless dir holds <name>.yaml.skip; a
// disabled add-on's file is removed, so the controller deletes its
// objects. It returns the names it staged.
func Stage(addons fs.FS, dir string, values any, disabled []string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create manifests dir: %w", err)
	}
	entries, err := fs.ReadDir(addons, ".")
	if err != nil {
		return nil, err
	}
	var staged []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if !ok {
			continue
		}
		target := filepath.Join(dir, e.Name())
		if _, err := os.Stat(target + ".skip"); err == nil {
			continue
		}
		if slices.Contains(disabled, name) {
			if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
				return nil, fmt.Errorf("remove disabled add-on %s: %w", target, err)
			}
			continue
		}
		rendered, err := render(addons, e.Name(), values)
		if err != nil {
			return nil, err
		}
		if current, err := os.ReadFile(target); err == nil && bytes.Equal(current, rendered) {
			staged = append(staged, name)
			continue
		}
		if err := atomicfile.Write(atomicfile.File{Path: target, Data: rendered, Mode: 0o600}); err != nil {
			return nil, fmt.Errorf("stage add-on %s: %w", name, err)
		}
		staged = append(staged, name)
	}
	return staged, nil
}

// Names lists the add-ons in addons, the values --disable accepts.
func Names(addons fs.FS) []string {
	matches, _ := fs.Glob(addons, "*.yaml")
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(path.Base(m), ".yaml"))
	}
	return names
}

func render(addons fs.FS, file string, values any) ([]byte, error) {
	src, err := fs.ReadFile(addons, file)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New(file).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse add-on template %s: %w", file, err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, values); err != nil {
		return nil, fmt.Errorf("render add-on template %s: %w", file, err)
	}
	return out.Bytes(), nil
}
