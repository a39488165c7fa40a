package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"regente.io/regente/pkg/certs"
	"regente.io/regente/pkg/config"
	"regente.io/regente/pkg/join"
)

func readToken(t *testing.T, path string) join.Token {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	tok, err := join.ParseToken(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRotateTokenSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	cfg := config.NewServer()
	cfg.DataDir = t.TempDir()
	paths := cfg.Paths()
	ca := certs.Layout(paths.TLSDir).ServerCA.Cert
	if err := os.MkdirAll(filepath.Dir(ca), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, []byte("a CA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ensureTokens(ctx, cfg, paths, join.NewServer(join.ServerConfig{})); err != nil {
		t.Fatal(err)
	}
	old := readToken(t, paths.TokenFile)
	hash, _ := certs.CAHash(ca)
	const next = "0123456789abcdef0123"
	token, err := rotateToken(ctx, paths, hash, old.Secret, next)
	if err != nil {
		t.Fatal(err)
	}
	if got := readToken(t, paths.TokenFile); got.String() != token || got.Secret != next || got.CAHash != hash {
		t.Errorf("token file holds %s, want %s", got, token)
	}
	if b, _ := os.ReadFile(paths.RevokedFile); strings.Contains(string(b), old.Secret) || !strings.Contains(string(b), join.SecretHash(old.Secret)) {
		t.Errorf("revoked list must hold the old secret's hash only:\n%s", b)
	}
	if fi, _ := os.Stat(paths.RevokedFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("revoked list mode %v, want 0600", fi.Mode().Perm())
	}

	// A restart reads the rotated token from the file.
	if err := ensureTokens(ctx, cfg, paths, join.NewServer(join.ServerConfig{})); err != nil {
		t.Fatal(err)
	}
	if got := readToken(t, paths.TokenFile); got.Secret != next {
		t.Errorf("after a restart the token file holds %s", got.Secret)
	}
	// A restart with the replaced token in --token is refused rather than
	// bringing it back.
	for _, given := range []string{old.Secret, old.String()} {
		cfg.Token = given
		err := ensureTokens(ctx, cfg, paths, join.NewServer(join.ServerConfig{}))
		if err == nil || !strings.Contains(err.Error(), "`regente token rotate` replaced") || !strings.Contains(err.Error(), paths.TokenFile) {
			t.Errorf("--token %s: %v", given, err)
		}
	}
	if got := readToken(t, paths.TokenFile); got.Secret != next {
		t.Errorf("a refused start rewrote the token file: %s", got.Secret)
	}
	cfg.Token = next
	if err := ensureTokens(ctx, cfg, paths, join.NewServer(join.ServerConfig{})); err != nil {
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
