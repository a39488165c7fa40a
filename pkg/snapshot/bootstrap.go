package snapshot

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"regente.io/regente/pkg/atomicfile"
	"regente.io/regente/pkg/certs"
)

// A snapshot carries, sealed in its sidecar, what a fresh machine needs
// beside the datastore to bring the cluster back: the shared CAs and the
// service-account key (certs.SharedFiles) and the Secrets' encryption
// configuration, as k3s keeps its bootstrap data. They are sealed with
// AES-256-GCM under a key derived from the server token's secret, so the
// snapshot file alone gives nobody the cluster's keys.

// bootstrapIterations is PBKDF2's work factor for the sealing key.
const bootstrapIterations = 200_000

// sealed is the sidecar's "bootstrap" field.
type sealed struct {
	Salt  []byte `json:"salt"`
	Nonce []byte `json:"nonce"`
	Data  []byte `json:"data"`
}

// bootstrapData is what is sealed.
type bootstrapData struct {
	Files            map[string][]byte `json:"files"`
	EncryptionConfig []byte            `json:"encryptionConfig,omitempty"`
}

func sealingKey(secret string, salt []byte) (cipher.AEAD, error) {
	key, err := pbkdf2.Key(sha256.New, secret, salt, bootstrapIterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SealBootstrap seals the shared files of tlsDir, and encryptionConfig
// when it exists, into the sidecar of the snapshot file, under secret.
func SealBootstrap(file, tlsDir, encryptionConfig, secret string) error {
	if secret == "" {
		return errors.New("seal the cluster's keys into the snapshot: no server token secret")
	}
	files, err := certs.ReadShared(tlsDir)
	if err != nil {
		return fmt.Errorf("seal the cluster's keys into the snapshot: %w", err)
	}
	data := bootstrapData{Files: files}
	if b, err := os.ReadFile(encryptionConfig); err == nil {
		data.EncryptionConfig = b
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("seal the encryption configuration into the snapshot: %w", err)
	}
	plain, err := json.Marshal(data)
	if err != nil {
		return err
	}
	s := sealed{Salt: make([]byte, 16)}
	if _, err := rand.Read(s.Salt); err != nil {
		return err
	}
	aead, err := sealingKey(secret, s.Salt)
	if err != nil {
		return err
	}
	s.Nonce = make([]byte, aead.NonceSize())
	if _, err := rand.Read(s.Nonce); err != nil {
		return err
	}
	s.Data = aead.Seal(nil, s.Nonce, plain, nil)
	info, err := readInfo(file)
	if err != nil {
		return err
	}
	if info.Bootstrap, err = json.Marshal(s); err != nil {
		return err
	}
	return writeInfo(file, info)
}

// RestoreBootstrap writes the cluster's keys that the snapshot file's
// sidecar carries into tlsDir and encryptionConfig, opened with secret,
// when tlsDir holds no server CA yet (a fresh machine); a machine that
// has its CAs keeps them. It reports whether it wrote them.
func RestoreBootstrap(file, tlsDir, encryptionConfig, secret string) (bool, error) {
	info, err := readInfo(file)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(tlsDir, "server-ca.crt")); err == nil || len(info.Bootstrap) == 0 {
		return false, nil
	}
	if secret == "" {
		return false, fmt.Errorf("snapshot %s carries the cluster's CAs sealed with its server token: give that token with --token (or --token-file) to restore it on this machine", file)
	}
	var s sealed
	if err := json.Unmarshal(info.Bootstrap, &s); err != nil {
		return false, fmt.Errorf("snapshot %s: its sidecar's sealed keys are damaged: %w", file, err)
	}
	aead, err := sealingKey(secret, s.Salt)
	if err != nil {
		return false, err
	}
	if len(s.Nonce) != aead.NonceSize() {
		return false, fmt.Errorf("snapshot %s: its sidecar's sealed keys are damaged (nonce of %d bytes)", file, len(s.Nonce))
	}
	plain, err := aead.Open(nil, s.Nonce, s.Data, nil)
	if err != nil {
		return false, fmt.Errorf("snapshot %s: the token does not open its sealed CAs: give the server token the cluster had when the snapshot was taken", file)
	}
	var data bootstrapData
	if err := json.Unmarshal(plain, &data); err != nil {
		return false, fmt.Errorf("snapshot %s: its sealed keys are damaged: %w", file, err)
	}
	writes, err := certs.SharedWrites(tlsDir, data.Files, "snapshot "+file)
	if err != nil {
		return false, err
	}
	if len(data.EncryptionConfig) > 0 {
		writes = append(writes, atomicfile.File{Path: encryptionConfig, Data: data.EncryptionConfig, Mode: 0o600})
	}
	for _, dir := range []string{tlsDir, filepath.Dir(encryptionConfig)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, err
		}
	}
	if err := atomicfile.Write(writes...); err != nil {
		return false, fmt.Errorf("restore the cluster's keys from snapshot %s: %w", file, err)
	}
	return true, nil
}

// Keys says where a server keeps what a snapshot seals: its TLS dir, its
// encryption configuration, and the secret of its server token.
type Keys struct {
	TLSDir, EncryptionConfig string
	Secret                   func() (string, error)
}

// Sealed runs save, a SaveSQLite or SaveEtcd into dir, then seals keys
// into the snapshot's sidecar.
func Sealed(keys Keys, dir string, save func() (*Info, error)) (*Info, error) {
	info, err := save()
	if err != nil {
		return nil, err
	}
	secret, err := keys.Secret()
	if err == nil {
		err = SealBootstrap(filepath.Join(dir, info.Name+".db"), keys.TLSDir, keys.EncryptionConfig, secret)
	}
	if err != nil {
		return info, fmt.Errorf("snapshot %s was saved without the cluster's keys, so it restores only where they are: %w", info.Name, err)
	}
	return info, nil
}
