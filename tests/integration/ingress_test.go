//go:build integration

package integration

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testIngress is TestAddons' ingress subtest: two Services behind one
// Ingress with two host and path rules, TLS from a Secret, and the
// Ingress's status, all through the bundled controller on the node's
// ports 80 and 443.
func testIngress(t *testing.T, s *server, image, nodeIP string) {
	for _, app := range []string{"shop", "blog"} {
		s.kubectl("create", "deployment", app, "--image="+image, "--", "sh", "-c",
			"mkdir -p /www/api && echo "+app+" > /www/index.html && echo "+app+"-api > /www/api/index.html && exec httpd -f -p 8080 -h /www")
		s.kubectl("expose", "deployment", app, "--port=80", "--target-port=8080")
	}
	caPEM, cert := testCA(t, "secure.test")
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.kubectl("create", "secret", "tls", "secure-tls", "--cert="+filepath.Join(dir, "tls.crt"), "--key="+filepath.Join(dir, "tls.key"))
	// No class named: the default IngressClass is the bundled controller's.
	s.apply(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: sites}
spec:
  tls:
  - {hosts: [secure.test], secretName: secure-tls}
  rules:
  - host: shop.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: blog, port: {number: 80}}}}
  - host: secure.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: blog, port: {number: 80}}}}
`)
	s.kubectl("-n", "kube-system", "rollout", "status", "deployment/ingress", "--timeout=120s")
	plain := &http.Client{Timeout: 3 * time.Second}
	for _, tc := range []struct{ host, path, want string }{
		{"shop.test", "/", "shop"},
		{"shop.test", "/api/", "blog-api"}, // the longer path wins
		{"secure.test", "/", "blog"},
	} {
		eventually(t, 90*time.Second, "http://"+tc.host+tc.path+" through the ingress", func() error {
			return getWithHost(plain, "http://"+net.JoinHostPort(nodeIP, "80")+tc.path, tc.host, http.StatusOK, tc.want)
		})
	}
	if err := getWithHost(plain, "http://"+net.JoinHostPort(nodeIP, "80")+"/", "nobody.test", http.StatusNotFound, ""); err != nil {
		t.Errorf("a host with no rule: %v", err)
	}

	// The Secret's certificate, picked by SNI and verified with its CA.
	secure := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "secure.test", MinVersion: tls.VersionTLS12},
	}}
	eventually(t, 60*time.Second, "https://secure.test with the Secret's certificate", func() error {
		return getWithHost(secure, "https://"+net.JoinHostPort(nodeIP, "443")+"/", "secure.test", http.StatusOK, "blog")
	})

	eventually(t, 60*time.Second, "the Ingress's address is the node's", func() error {
		out, err := s.kubectlErr("get", "ingress", "sites", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
		if err != nil || out != nodeIP {
			return fmt.Errorf("status address %q, want %s (%v)", out, nodeIP, err)
		}
		return nil
	})
	s.kubectl("delete", "ingress", "sites")
	eventually(t, 30*time.Second, "a deleted Ingress stops routing", func() error {
		return getWithHost(plain, "http://"+net.JoinHostPort(nodeIP, "80")+"/", "shop.test", http.StatusNotFound, "")
	})
	s.kubectl("delete", "deployment,service", "shop", "blog")
	s.kubectl("delete", "secret", "secure-tls")
}

// getWithHost GETs url with a Host header and checks the status and, when
// want is not empty, the body.
func getWithHost(client *http.Client, url, host string, status int, want string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || want != "" && strings.TrimSpace(string(body)) != want {
		return fmt.Errorf("GET %s (Host %s) = %d %q, want %d %q", url, host, resp.StatusCode, body, status, want)
	}
	return nil
}
