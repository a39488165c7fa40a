package ingress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Secrets finds a Secret by namespace and name.
type Secrets func(namespace, name string) (*corev1.Secret, error)

// Certs picks the serving certificate by the name a client asks for (SNI).
// Like Table, it is built whole on each change and only read after.
type Certs struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // by the suffix after "*"
	fallback *tls.Certificate
}

// BuildCerts loads the certificates the Ingresses' tls sections name. A
// tls entry without hosts covers the hosts of that Ingress's rules. Where
// two Ingresses name the same host, the older one's certificate is used.
// Clients asking for a name no Secret covers get fallback.
func BuildCerts(ingresses []*networkingv1.Ingress, secrets Secrets, fallback *tls.Certificate) (*Certs, []Problem) {
	c := &Certs{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}, fallback: fallback}
	var problems []Problem
	for _, ing := range oldestFirst(ingresses) {
		for _, entry := range ing.Spec.TLS {
			if entry.SecretName == "" {
				continue
			}
			hosts := entry.Hosts
			if len(hosts) == 0 {
				for _, rule := range ing.Spec.Rules {
					if rule.Host != "" {
						hosts = append(hosts, rule.Host)
					}
				}
			}
			cert, err := loadSecret(ing.Namespace, entry.SecretName, secrets)
			if err != nil {
				problems = append(problems, Problem{Ingress: ing.Namespace + "/" + ing.Name, Err: err})
				continue
			}
			for _, h := range hosts {
				c.add(strings.ToLower(h), cert)
			}
		}
	}
	return c, problems
}

func (c *Certs) add(host string, cert *tls.Certificate) {
	m, key := c.exact, host
	if suffix, ok := strings.CutPrefix(host, "*"); ok {
		m, key = c.wildcard, suffix
	}
	if _, taken := m[key]; !taken {
		m[key] = cert
	}
}

// Get is a tls.Config's GetCertificate: the Secret for the exact name,
// then for a wildcard one label deep, then the fallback.
func (c *Certs) Get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if cert, ok := c.exact[name]; ok {
		return cert, nil
	}
	if _, suffix, ok := strings.Cut(name, "."); ok {
		if cert, ok := c.wildcard["."+suffix]; ok {
			return cert, nil
		}
	}
	return c.fallback, nil
}

func loadSecret(namespace, name string, secrets Secrets) (*tls.Certificate, error) {
	s, err := secrets(namespace, name)
	if err != nil {
		return nil, fmt.Errorf("tls secret %s/%s: %w", namespace, name, err)
	}
	if s.Type != corev1.SecretTypeTLS {
		return nil, fmt.Errorf("tls secret %s/%s has type %q: create it with kubectl create secret tls", namespace, name, s.Type)
	}
	cert, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, fmt.Errorf("tls secret %s/%s: %w", namespace, name, err)
	}
	return &cert, nil
}

// SelfSigned makes the certificate served to clients whose name no Secret
// covers, as other controllers do: a fresh key on each start, never
// written anywhere.
func SelfSigned(now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the default certificate's key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate the default certificate's serial: %w", err)
	}
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "regente ingress default certificate"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sign the default certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
