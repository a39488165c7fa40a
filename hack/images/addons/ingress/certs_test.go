package ingress

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCerts(t *testing.T) {
	now := time.Now()
	fallback, err := SelfSigned(now)
	if err != nil {
		t.Fatal(err)
	}
	secret := func(name string, cert *tls.Certificate) *corev1.Secret {
		certPEM, keyPEM := pemOf(t, cert)
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
	}
	appCert, _ := SelfSigned(now)
	wildCert, _ := SelfSigned(now)
	youngCert, _ := SelfSigned(now)
	stored := map[string]*corev1.Secret{
		"default/app": secret("app", appCert), "default/wild": secret("wild", wildCert), "default/young": secret("young", youngCert),
		"default/opaque": {Type: corev1.SecretTypeOpaque},
	}
	secrets := func(ns, name string) (*corev1.Secret, error) {
		if s, ok := stored[ns+"/"+name]; ok {
			return s, nil
		}
		return nil, errors.New("not found")
	}
	app := ingressOf("app", time.Hour, "app.example.com", path{"/", networkingv1.PathTypePrefix, "web", port80})
	app.Spec.TLS = []networkingv1.IngressTLS{{SecretName: "app"}, {Hosts: []string{"*.example.com"}, SecretName: "wild"}}
	young := ingressOf("young", 0, "", path{"/", networkingv1.PathTypePrefix, "web", port80})
	young.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"app.example.com", "young.local"}, SecretName: "young"}}
	bad := ingressOf("bad", 0, "bad.local")
	bad.Spec.TLS = []networkingv1.IngressTLS{{SecretName: "opaque"}, {SecretName: "missing"}}

	certs, problems := BuildCerts([]*networkingv1.Ingress{young, app, bad}, secrets, fallback)
	if len(problems) != 2 {
		t.Errorf("problems %v, want the Opaque and the missing Secret", problems)
	}
	for _, tc := range []struct {
		name string
		want *tls.Certificate
	}{
		{"app.example.com", appCert}, // the older Ingress keeps the host
		{"www.example.com", wildCert},
		{"young.local", youngCert},
		{"bad.local", fallback},
		{"", fallback},
	} {
		got, err := certs.Get(&tls.ClientHelloInfo{ServerName: tc.name})
		if err != nil || !sameCert(got, tc.want) {
			t.Errorf("certificate for %q: not the expected one", tc.name)
		}
	}
}

func sameCert(a, b *tls.Certificate) bool {
	return a != nil && b != nil && string(a.Certificate[0]) == string(b.Certificate[0])
}

func pemOf(t *testing.T, cert *tls.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})
}
