package snapshot

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"regente.io/regente/pkg/certs"
)

func TestBootstrapSealedInTheSidecar(t *testing.T) {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	if _, err := certs.Ensure(certs.Options{Dir: tlsDir, Hostname: "h", ClusterDomain: "cluster.local"}); err != nil {
		t.Fatal(err)
	}
	encryption := filepath.Join(dir, "cred", "encryption-config.json")
	os.MkdirAll(filepath.Dir(encryption), 0o700)
	os.WriteFile(encryption, []byte(`{"kind":"EncryptionConfiguration"}`), 0o600)
	db := filepath.Join(dir, "state.db")
	newDB(t, db, true, 3)
	if _, err := SaveSQLite(db, filepath.Join(dir, "snaps"), "one"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "snaps", "one.db")
	if err := SealBootstrap(file, tlsDir, encryption, "s3cret-token"); err != nil {
		t.Fatal(err)
	}
	sidecar, _ := os.ReadFile(file + ".json")
	if bytes.Contains(sidecar, []byte("PRIVATE KEY")) || bytes.Contains(sidecar, []byte("EncryptionConfiguration")) {
		t.Fatalf("the sidecar holds the keys in the clear:\n%s", sidecar)
	}
	if _, err := Verify(file); err != nil {
		t.Fatalf("the sealed keys broke the checksum: %v", err)
	}

	fresh := filepath.Join(dir, "fresh")
	freshTLS, freshEnc := filepath.Join(fresh, "tls"), filepath.Join(fresh, "cred", "encryption-config.json")
	for _, tc := range []struct{ secret, want string }{
		{"", "give that token with --token"},
		{"wrong", "the token does not open"},
	} {
		if _, err := RestoreBootstrap(file, freshTLS, freshEnc, tc.secret); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("secret %q: %v, want %q", tc.secret, err, tc.want)
		}
	}
	if ok, err := RestoreBootstrap(file, freshTLS, freshEnc, "s3cret-token"); !ok || err != nil {
		t.Fatalf("RestoreBootstrap = %v, %v", ok, err)
	}
	for _, name := range certs.SharedFiles() {
		want, _ := os.ReadFile(filepath.Join(tlsDir, name))
		got, err := os.ReadFile(filepath.Join(freshTLS, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s restored as %d bytes (%v), want the original's %d", name, len(got), err, len(want))
		}
	}
	if got, _ := os.ReadFile(freshEnc); !strings.Contains(string(got), "EncryptionConfiguration") {
		t.Errorf("encryption configuration restored as %q", got)
	}
	// A machine with CAs of its own keeps them.
	if ok, err := RestoreBootstrap(file, tlsDir, encryption, "s3cret-token"); ok || err != nil {
		t.Errorf("over existing CAs: %v, %v; want them kept", ok, err)
	}
}
