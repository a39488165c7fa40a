//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPrivateRegistry runs a registry in the test process (TLS from a test
// CA, Basic auth), mirrors a made-up registry name to it through
// --private-registry, and runs a pod that must pull from it.
func TestPrivateRegistry(t *testing.T) {
	bin := requirements(t)
	dir := t.TempDir()

	t.Run("unknown key stops the server, naming file and key", func(t *testing.T) {
		bad := filepath.Join(dir, "bad-registries.yaml")
		if err := os.WriteFile(bad, []byte("mirrors:\n  mirror.test:\n    endpoints: [\"https://127.0.0.1:5000\"]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s := newProcess(t, bin, "--bind-address=0.0.0.0", "--private-registry", bad)
		code, out := runBinary(t, bin, s.args...)
		if code == 0 || !strings.Contains(out, bad) || !strings.Contains(out, `mirrors."mirror.test".endpoints`) || !strings.Contains(out, `did you mean "endpoint"`) {
			t.Fatalf("exit code %d, want non-zero naming %s and the key:\n%s", code, bad, tail(out))
		}
		if _, err := os.Stat(filepath.Join(s.dataDir, "server", "tls")); err == nil {
			t.Errorf("the bad file was reported only after the server created its certificates")
		}
	})
	t.Run("missing explicit file stops the server", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.yaml")
		s := newProcess(t, bin, "--bind-address=0.0.0.0", "--private-registry", missing)
		if code, out := runBinary(t, bin, s.args...); code == 0 || !strings.Contains(out, missing+" does not exist") {
			t.Fatalf("exit code %d:\n%s", code, tail(out))
		}
	})

	caPEM, serverCert := testCA(t, "127.0.0.1")
	caFile := filepath.Join(dir, "registry-ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	const user, password = "puller", "pull-s3cret"
	var authorized, refused atomic.Int64
	handler := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	reg := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="regente-test"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			authorized.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	reg.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}}
	reg.StartTLS()
	t.Cleanup(reg.Close)
	host := reg.Listener.Addr().String()

	pushImage(t, busyboxImage(t, "mirror.test/library/x:tag"), host+"/library/x:tag", caPEM, &authn.Basic{Username: user, Password: password})
	authorized.Store(0)

	// The endpoint's host is where the request goes, so that is where
	// its credentials and CA are keyed, as in k3s.
	regFile := filepath.Join(dir, "registries.yaml")
	if err := os.WriteFile(regFile, []byte(fmt.Sprintf(`mirrors:
  mirror.test:
    endpoint:
      - https://%[1]s
configs:
  "%[1]s":
    auth:
      username: %[2]s
      password: %[3]s
    tls:
      ca_file: %[4]s
`, host, user, password, caFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newNode(t, bin, nil, "--private-registry", regFile)
	s.start()
	s.waitNodeReady(t)

	hostsToml := filepath.Join(s.dataDir, "agent", "etc", "containerd", "certs.d", "mirror.test", "hosts.toml")
	if b, err := os.ReadFile(hostsToml); err != nil || !strings.Contains(string(b), `[host."https://`+host+`"]`) || !strings.Contains(string(b), caFile) {
		t.Fatalf("%s: %v\n%s", hostsToml, err, b)
	}

	s.apply(`apiVersion: v1
kind: Pod
metadata: {name: pulled}
spec:
  containers:
  - name: main
    image: mirror.test/library/x:tag
    imagePullPolicy: Always
    command: ["/bin/busybox", "sleep", "86400"]
`)
	eventually(t, 90*time.Second, "the pod pulled from the mirror runs", func() error {
		phase, err := s.kubectlErr("get", "pod", "pulled", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].state.waiting.message}")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(phase, "Running") {
			return fmt.Errorf("pod: %s", phase)
		}
		return nil
	})
	if authorized.Load() == 0 || refused.Load() == 0 {
		t.Errorf("the registry saw %d authenticated manifest pulls and %d challenges: the pull did not authenticate through the mirror", authorized.Load(), refused.Load())
	}
}

// testCA returns a CA's PEM and a server certificate it signed for host,
// an IP address or a DNS name.
func testCA(t *testing.T, host string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "regente test registry CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if ip := net.ParseIP(host); ip != nil {
		leafTmpl.IPAddresses = []net.IP{ip}
	} else {
		leafTmpl.DNSNames = []string{host}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

// pushImage pushes the single image of an OCI layout tar (as
// ociarchive writes) to ref.
func pushImage(t *testing.T, archive []byte, ref string, caPEM []byte, auth authn.Authenticator) {
	t.Helper()
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Clean("/"+h.Name))
		data, err := io.ReadAll(tr)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(path), 0o700)
		}
		if err == nil {
			err = os.WriteFile(path, data, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	index, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := index.IndexManifest()
	if err != nil || len(manifest.Manifests) != 1 {
		t.Fatalf("image layout index: %v %v", manifest, err)
	}
	img, err := index.Image(manifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	if err := remote.Write(r, img, remote.WithAuth(auth), remote.WithTransport(transport)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}
