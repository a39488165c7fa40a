package certs

import (
	"fmt"
	"os"
	"path/filepath"

	"regente.io/regente/pkg/atomicfile"
)

// SharedFiles are the files of the TLS dir that every server of a cluster
// holds the same: the CAs and the service-account key. A joining server
// fetches them, and a snapshot carries them sealed.
func SharedFiles() []string {
	return []string{
		"server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key",
		"request-header-ca.crt", "request-header-ca.key", "etcd-ca.crt", "etcd-ca.key", "service.key",
	}
}

// ReadShared reads SharedFiles from tlsDir.
func ReadShared(tlsDir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, name := range SharedFiles() {
		b, err := os.ReadFile(filepath.Join(tlsDir, name))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		files[name] = b
	}
	return files, nil
}

// SharedWrites are files, which must hold every one of SharedFiles, as
// writes into tlsDir: keys 0600, certificates 0644. from names where they
// came from, for the error when one is missing.
func SharedWrites(tlsDir string, files map[string][]byte, from string) ([]atomicfile.File, error) {
	var writes []atomicfile.File
	for _, name := range SharedFiles() {
		data, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("%s holds no %s", from, name)
		}
		mode := os.FileMode(0o644)
		if filepath.Ext(name) == ".key" {
			mode = 0o600
		}
		writes = append(writes, atomicfile.File{Path: filepath.Join(tlsDir, name), Data: data, Mode: mode})
	}
	return writes, nil
}
