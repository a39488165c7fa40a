package join

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"regente.io/regente/pkg/certs"
)

func readTokenFile(t *testing.T, path string) Token {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	tok, err := ParseToken(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A rotation is durable: a restart loads the new token, and a --token
// still holding the replaced one is refused rather than bringing it back.
func TestRotateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	files := TokenFiles{Token: filepath.Join(dir, "token"), AgentToken: filepath.Join(dir, "agent-token"),
		Revoked: filepath.Join(dir, "token-revoked"), NodeToken: filepath.Join(dir, "node-token"), TLSDir: filepath.Join(dir, "tls")}
	ca := certs.Layout(files.TLSDir).ServerCA.Cert
	if err := os.MkdirAll(filepath.Dir(ca), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, []byte("a CA"), 0o644); err != nil {
		t.Fatal(err)
	}
	tokens := NewTokens(files)
	if err := tokens.Load(ctx, "", ""); err != nil {
		t.Fatal(err)
	}
	old := readTokenFile(t, files.Token)
	if link, err := os.Readlink(files.NodeToken); err != nil || link != "token" {
		t.Errorf("node-token links to %q (%v), want token", link, err)
	}
	hash, _ := certs.CAHash(ca)
	const next = "0123456789abcdef0123"
	token, err := tokens.Rotate(ctx, old, next)
	if err != nil {
		t.Fatal(err)
	}
	if got := readTokenFile(t, files.Token); got.String() != token || got.Secret != next || got.CAHash != hash {
		t.Errorf("token file holds %s, want %s", got, token)
	}
	if b, _ := os.ReadFile(files.Revoked); strings.Contains(string(b), old.Secret) || !strings.Contains(string(b), SecretHash(old.Secret)) {
		t.Errorf("revoked list must hold the old secret's hash only:\n%s", b)
	}
	if fi, _ := os.Stat(files.Revoked); fi.Mode().Perm() != 0o600 {
		t.Errorf("revoked list mode %v, want 0600", fi.Mode().Perm())
	}

	if err := NewTokens(files).Load(ctx, "", ""); err != nil {
		t.Fatal(err)
	}
	if got := readTokenFile(t, files.Token); got.Secret != next {
		t.Errorf("after a restart the token file holds %s", got.Secret)
	}
	for _, given := range []string{old.Secret, old.String()} {
		err := NewTokens(files).Load(ctx, given, "")
		if err == nil || !strings.Contains(err.Error(), "`regente token rotate` replaced") || !strings.Contains(err.Error(), files.Token) {
			t.Errorf("--token %s: %v", given, err)
		}
	}
	if got := readTokenFile(t, files.Token); got.Secret != next {
		t.Errorf("a refused start rewrote the token file: %s", got.Secret)
	}
	if err := NewTokens(files).Load(ctx, next, ""); err != nil {
		t.Errorf("--token with the new secret: %v", err)
	}
}

func TestReadRevokedNamesABadLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token-revoked")
	if err := os.WriteFile(path, []byte("# comment\nnot a line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readRevoked(path); err == nil || !strings.Contains(err.Error(), path+" line 2") {
		t.Errorf("got %v", err)
	}
}
