//go:build integration

package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// nodeClient returns a client authenticated as system:node:<name> with a
// certificate signed by the cluster's client CA, the way a kubelet is.
func nodeClient(t *testing.T, s *server, name string) *kubernetes.Clientset {
	t.Helper()
	tlsDir := filepath.Join(s.dataDir, "server", "tls")
	caCert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, "client-ca.crt"), filepath.Join(tlsDir, "client-ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caCert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	cfg := rest.AnonymousClientConfig(s.restConfig())
	cfg.CertData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cfg.KeyData = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return kubernetes.NewForConfigOrDie(cfg)
}

// TestNodeRestriction checks the Node authorizer and the NodeRestriction
// admission plugin: a node may register and label itself, but not another
// node, and may not read secrets it has no pod for.
func TestNodeRestriction(t *testing.T) {
	bin := requirements(t)
	s := newServer(t, bin)
	s.start()
	ctx := context.Background()
	nodeA := nodeClient(t, s, "node-a")

	if _, err := nodeA.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("node-a registering itself: %v", err)
	}
	_, err := nodeA.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("node-a creating node-b: %v, want forbidden", err)
	}
	s.kubectl("label", "node", "node-a", "team=x")
	self, err := nodeA.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	self.Labels["node-restriction.kubernetes.io/trusted"] = "true"
	_, err = nodeA.CoreV1().Nodes().Update(ctx, self, metav1.UpdateOptions{})
	if err == nil || !strings.Contains(err.Error(), "node-restriction.kubernetes.io") {
		t.Fatalf("node-a setting a node-restriction label: %v, want refusal by NodeRestriction", err)
	}
	s.kubectl("create", "secret", "generic", "unrelated", "--from-literal=a=b")
	_, err = nodeA.CoreV1().Secrets("default").Get(ctx, "unrelated", metav1.GetOptions{})
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("node-a reading a secret no pod of it uses: %v, want forbidden", err)
	}
}
