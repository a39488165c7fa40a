package cis

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("file ownership is checked against root: run as root")
	}
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "a.key"), filepath.Join(dir, "a.crt")
	for path, mode := range map[string]os.FileMode{key: 0o644, cert: 0o644} {
		if err := os.WriteFile(path, nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	if detail, ok := fileModes(0o600, key, filepath.Join(dir, "missing")); ok || !strings.Contains(detail, key+" is 0644") {
		t.Errorf("a 0644 key: %q, %v", detail, ok)
	}
	if detail, ok := fileModes(0o644, cert, filepath.Join(dir, "missing")); !ok || detail != "1 checked, none above 0644" {
		t.Errorf("a 0644 certificate: %q, %v", detail, ok)
	}
}

func TestRequestWithoutCert(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	if status, err := requestWithoutCert(addr, "/version", 5*time.Second); err == nil {
		t.Errorf("a server requiring client certificates answered %q", status)
	}

	open := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer open.Close()
	status, err := requestWithoutCert(strings.TrimPrefix(open.URL, "https://"), "/version", 5*time.Second)
	if err != nil || status != "HTTP/1.1 200 OK" {
		t.Errorf("a server without client authentication: %q, %v", status, err)
	}
}
