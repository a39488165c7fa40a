package certs

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// LoadCertificate reads the first CERTIFICATE block of a PEM file.
func LoadCertificate(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError already names the file
	}
	cert, err := parseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("parse certificate %s: %w", path, err)
	}
	return cert, nil
}

// CAHash returns the hex SHA-256 of the CA certificate file's bytes, as
// joining nodes pin it. It hashes the file, not the DER, so it changes only
// when the file does.
func CAHash(caCertPath string) (string, error) {
	b, err := os.ReadFile(caCertPath)
	if err != nil {
		return "", fmt.Errorf("hash CA certificate: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// TrustedCAHashes are the server CA hashes a join token may pin: the
// current file's and, after RotateCA, the replaced file's.
func TrustedCAHashes(tlsDir string) ([]string, error) {
	current, err := CAHash(pair(tlsDir, "server-ca").Cert)
	if err != nil {
		return nil, err
	}
	hashes := []string{current}
	previous, err := CAHash(previousFile(tlsDir, "server-ca"))
	if err == nil {
		hashes = append(hashes, previous)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return hashes, nil
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError already names the file
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse key %s: %w", path, err)
	}
	return key, nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("stat %s: %w", path, err)
}

// ensureDir creates dir and tightens an existing one: it holds CA keys.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// fixKeyMode tightens a reused key file that someone loosened; chmod leaves
// the contents and mtime alone, so it does not count as a change.
func fixKeyMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if fi.Mode().Perm() == 0o600 {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}
