package join

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"regente.io/regente/pkg/atomicfile"
)

// NodePassword returns the node password kept in file (0600), creating a
// random one on first use. It identifies this machine to the servers for
// as long as the file exists.
func NodePassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the node password: %w", err)
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate the node password: %w", err)
	}
	password := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(file), err)
	}
	if err := atomicfile.Write(atomicfile.File{Path: file, Data: []byte(password + "\n"), Mode: 0o600}); err != nil {
		return "", fmt.Errorf("write the node password: %w", err)
	}
	return password, nil
}
